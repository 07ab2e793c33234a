"""Money is exact: Decimal with a currency, floats refused."""

from decimal import Decimal

import pytest

from portal.lib.money import LossyMoneyError, Money, MoneyParseError


def test_multiplying_money_by_a_float_fails():
    with pytest.raises(LossyMoneyError):
        Money("3000") * 1.16
    with pytest.raises(LossyMoneyError):
        0.5 * Money("3000")


def test_money_cannot_be_made_from_a_float():
    with pytest.raises(LossyMoneyError):
        Money(0.1 + 0.2)


def test_decimal_arithmetic_is_exact():
    assert Money("0.10") + Money("0.20") == Money("0.30")
    assert Money("3000") * Decimal("0.16") == Money("480")
    assert Money("3000") - Money("1000") - Money("2500") == Money("-500")


def test_currencies_do_not_mix():
    with pytest.raises(ValueError, match="currency mismatch"):
        Money("1", "KES") + Money("1", "USD")


def test_split_adds_back_to_the_total():
    parts = Money("10").split(3)
    assert [p.amount for p in parts] == [Decimal("3.34"), Decimal("3.33"), Decimal("3.33")]
    assert sum((p for p in parts), Money.zero()) == Money("10")


@pytest.mark.parametrize("text, amount", [("3,000", "3000"), ("KES 8 000", "8000"), ("2500.50", "2500.50"), (" 1 ", "1")])
def test_parse_what_people_type(text, amount):
    assert Money.parse(text) == Money(amount)


@pytest.mark.parametrize("text", ["", "abc", "12.345", "1e5x", "NaN", "1e3", "1E3", "Infinity", "0x10", "١٠٠",
                                  "10000000000", "1.", "--5"])
def test_parse_refuses_what_is_not_an_amount(text):
    with pytest.raises(MoneyParseError):
        Money.parse(text)


def test_formatting_is_for_people():
    assert Money("30000").format() == "KES 30,000"
    assert Money("2500.5").format() == "KES 2,500.50"
    assert Money("-500").format() == "-KES 500"
    assert Money("3000").is_whole and not Money("0.5").is_whole
