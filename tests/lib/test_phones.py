import pytest

from portal.lib.phones import PhoneError, display_phone, normalise_phone


@pytest.mark.parametrize("typed, normalised", [
    ("0712 345 678", "254712345678"), ("+254712345678", "254712345678"), ("712345678", "254712345678"),
    ("254-712-345-678", "254712345678"), ("0110 345 678", "254110345678"), ("+254 110345678", "254110345678"),
    ("(0722) 000-000", "254722000000"),
])
def test_common_ways_of_writing_a_kenyan_mobile(typed, normalised):
    assert normalise_phone(typed) == normalised


@pytest.mark.parametrize("typed", ["", "12", "0201234567", "+255712345678", "07123456789", "abc"])
def test_what_is_not_a_kenyan_mobile_is_refused(typed):
    with pytest.raises(PhoneError):
        normalise_phone(typed)


def test_display():
    assert display_phone("254712345678") == "0712 345 678"
