import pytest

from portal.lib.phones import (
    PhoneError,
    carrier_of,
    display_phone,
    normalise_phone,
    safaricom_phone,
)


@pytest.mark.parametrize("typed, normalised", [
    ("0712 345 678", "254712345678"), ("+254712345678", "254712345678"), ("712345678", "254712345678"),
    ("254-712-345-678", "254712345678"), ("0110 345 678", "254110345678"), ("+254 110345678", "254110345678"),
    ("(0722) 000-000", "254722000000"),
])
def test_common_ways_of_writing_a_kenyan_mobile(typed, normalised):
    assert normalise_phone(typed) == normalised


@pytest.mark.parametrize("typed", ["", "12", "0201234567", "+255712345678", "07123456789", "abc",
                                   "0712-FIT-678", "PTF0712345678", "0712345678 ext 2", "0800 123 456"])
def test_what_is_not_a_kenyan_mobile_is_refused(typed):
    with pytest.raises(PhoneError):
        normalise_phone(typed)


def test_display():
    assert display_phone("254712345678") == "0712 345 678"


def test_a_mobile_in_a_range_newer_than_the_phone_data_is_kept():
    """phonenumbers 9.0.43 does not count 0109 XXX XXX as valid (its carrier data has it as
    Airtel's): a member's real number there is kept, as the member table's own check allows."""
    assert normalise_phone("0109 218 072") == normalise_phone("254109218072") == "254109218072"


# The ranges of each network, as phones.carrier_of documents them (07XX and 01XX).
SAFARICOM_RANGES = {*(f"7{d}{e}" for d in "012" for e in "0123456789"), "740", "741", "742", "743", "745", "746",
                    "748", "749", "757", "758", "759", "768", "769", *(f"79{e}" for e in "0123456789"),
                    *(f"1{d}{e}" for d in "148" for e in "0123456789")}
AIRTEL_RANGES = {*(f"73{e}" for e in "0123456789"), "750", "751", "752", "753", "754", "755", "756", "760",
                 "762", "763", "764", "765", "766", "767", *(f"78{e}" for e in "0123456789"),
                 *(f"10{e}" for e in "0123456789"), "135", "136", "137", "138", "139"}


def test_every_kenyan_mobile_range_is_kept_and_the_network_is_told_by_its_prefix():
    networks = {}
    for first in "17":
        for rest in range(100):
            prefix = f"{first}{rest:02d}"
            phone = normalise_phone(f"0{prefix}123456")
            assert phone == f"254{prefix}123456"
            networks.setdefault(carrier_of(phone), set()).add(prefix)
    assert networks["Safaricom"] == SAFARICOM_RANGES
    assert networks["Airtel"] == AIRTEL_RANGES
    assert networks["Telkom"] == {*(f"77{e}" for e in "0123456789"), "761", "120"}


@pytest.mark.parametrize("typed", ["0712 345 678", "+254 110 345 678", "0757 000 111", "0799000111"])
def test_m_pesa_prompts_take_safaricom_numbers(typed):
    assert safaricom_phone(typed) == normalise_phone(typed)


@pytest.mark.parametrize("typed, message", [
    ("0733 123 456", "0733 123 456 is an Airtel number; M-Pesa prompts need a Safaricom number"),
    ("0100123456", "0100 123 456 is an Airtel number; M-Pesa prompts need a Safaricom number"),
    ("254109218072", "0109 218 072 is an Airtel number; M-Pesa prompts need a Safaricom number"),
    ("0770 123 456", "0770 123 456 is a Telkom number; M-Pesa prompts need a Safaricom number"),
    ("0150 123 456", "0150 123 456 is not a Safaricom number; M-Pesa prompts need a Safaricom number"),
    ("020 123 4567", "use a mobile number (M-Pesa needs one)"),
])
def test_m_pesa_prompts_refuse_other_networks_and_say_so(typed, message):
    with pytest.raises(PhoneError) as refused:
        safaricom_phone(typed)
    assert str(refused.value) == message
