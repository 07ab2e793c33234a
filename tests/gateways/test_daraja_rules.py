"""Daraja's request rules, checked without I/O: password, timestamp, field rules, ResultCodes,
retry verdicts and our callback URLs."""

from __future__ import annotations

import base64
import dataclasses
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from portal.gateways import callback_urls
from portal.gateways.daraja import (
    DarajaFieldError,
    banned_url_word,
    daraja_retryable,
    daraja_timestamp,
    refresh_due,
    result_code_str,
    stk_password,
    validate_stk_request,
)
from portal.lib.money import Money
from portal.settings import SettingsError, get_settings
from tests.gateways.conftest import SANDBOX_PASSKEY

CALLBACK = "https://gym.example.com/hooks/daraja/stk/abc123"


def valid(**overrides):
    args = {"phone": "0712345678", "amount": Money(Decimal("3000")), "account_reference": "PTF0001",
            "description": "Membership", "callback_url": CALLBACK,
            "max_amount": Decimal("150000")}  # the lower of the two caps reported (gateways.md §1.14)
    args.update(overrides)
    return validate_stk_request(**args)


# -- Password and timestamp ---------------------------------------------------------------------


def test_password_matches_the_official_test_vector():
    # gateways.md §1.4, from Safaricom's sample request.
    assert stk_password("174379", SANDBOX_PASSKEY, "20210628092408") == (
        "MTc0Mzc5YmZiMjc5ZjlhYTliZGJjZjE1OGU5N2RkNzFhNDY3Y2QyZTBjODkzMDU5YjEwZjc4ZTZiNzJhZGEx"
        "ZWQyYzkxOTIwMjEwNjI4MDkyNDA4")


def test_password_matches_the_second_vector():
    assert stk_password("174379", SANDBOX_PASSKEY, "20160216165627") == (
        "MTc0Mzc5YmZiMjc5ZjlhYTliZGJjZjE1OGU5N2RkNzFhNDY3Y2QyZTBjODkzMDU5YjEwZjc4ZTZiNzJhZGEx"
        "ZWQyYzkxOTIwMTYwMjE2MTY1NjI3")
    decoded = base64.b64decode(stk_password("174379", "k", "20160216165627"))
    assert decoded == b"174379k20160216165627"


def test_timestamp_is_nairobi_time_whatever_zone_the_clock_is_in():
    utc = datetime(2026, 1, 31, 22, 30, 5, tzinfo=timezone.utc)
    assert daraja_timestamp(utc) == "20260201013005"  # EAT = UTC+3: already the next day
    assert daraja_timestamp(utc.astimezone(ZoneInfo("America/Los_Angeles"))) == "20260201013005"
    assert daraja_timestamp(utc.astimezone(ZoneInfo("Africa/Nairobi"))) == "20260201013005"
    assert len(daraja_timestamp(datetime.now(timezone.utc))) == 14


def test_timestamp_refuses_a_naive_time():
    with pytest.raises(ValueError, match="timezone-aware"):
        daraja_timestamp(datetime(2026, 1, 31, 22, 30))


# -- STK field rules ----------------------------------------------------------------------------


@pytest.mark.parametrize("phone, expected", [
    ("0712345678", "254712345678"),
    ("+254 712 345 678", "254712345678"),
    ("254712345678", "254712345678"),
    ("712345678", "254712345678"),
    ("0110345678", "254110345678"),  # 011x numbers: validators that hard-code 2547 lose them
    ("254-110-345-678", "254110345678"),
])
def test_common_phone_formats_become_msisdns(phone, expected):
    assert valid(phone=phone).phone == expected


@pytest.mark.parametrize("phone", ["", "12345", "0812345678", "+255712345678", "2547123456789",
                                   "020 123 4567", "not a phone"])
def test_phones_that_are_not_kenyan_mobiles_are_refused(phone):
    with pytest.raises(DarajaFieldError) as exc:
        valid(phone=phone)
    assert exc.value.field == "phone"


@pytest.mark.parametrize("phone, network", [("0733 123 456", "an Airtel"), ("0100 123 456", "an Airtel"),
                                            ("0770 123 456", "a Telkom")])
def test_a_prompt_to_another_network_than_safaricom_is_refused(phone, network):
    with pytest.raises(DarajaFieldError) as exc:
        valid(phone=phone)
    assert (exc.value.field, exc.value.message) == (
        "phone", f"{phone} is {network} number; M-Pesa prompts need a Safaricom number")


@pytest.mark.parametrize("amount, expected", [
    (Money(Decimal("3000.00")), 3000), (Decimal("1"), 1), (Decimal("150000"), 150000),
    (Money(Decimal("1")), 1), (Decimal("2.000"), 2),
])
def test_whole_shilling_amounts_pass(amount, expected):
    assert valid(amount=amount).amount == expected


@pytest.mark.parametrize("amount, words", [
    (Money(Decimal("3000.50")), "whole shillings"),
    (Decimal("0.99"), "whole shillings"),  # refused, never rounded up or down
    (Decimal("10.01"), "whole shillings"),
    (Decimal("0"), "at least"),
    (Money(Decimal("-5")), "at least"),
    (Decimal("150001"), "at most"),
    (100.0, "float"),
    (Money(Decimal("100"), "USD"), "KES"),
    (Decimal("NaN"), "not an amount"),
    ("100", "str"),
])
def test_amounts_m_pesa_would_refuse_are_refused(amount, words):
    with pytest.raises(DarajaFieldError) as exc:
        valid(amount=amount)
    assert exc.value.field == "amount"
    assert words in exc.value.message


def test_the_maximum_is_configurable():
    assert valid(amount=Decimal("250000"), max_amount=250000).amount == 250000
    with pytest.raises(DarajaFieldError):
        valid(amount=Decimal("250001"), max_amount=250000)


def test_account_reference_up_to_12_characters():
    assert valid(account_reference="ABCDEFGHIJKL").account_reference == "ABCDEFGHIJKL"
    for bad in ("ABCDEFGHIJKLM", ""):
        with pytest.raises(DarajaFieldError) as exc:
            valid(account_reference=bad)
        assert exc.value.field == "account_reference"


def test_transaction_desc_up_to_13_characters_and_optional():
    assert valid(description="Annual member").description == "Annual member"  # 13
    assert valid(description="").description == ""
    with pytest.raises(DarajaFieldError) as exc:
        valid(description="Annual members")  # 14
    assert exc.value.field == "description"


@pytest.mark.parametrize("url", [
    "https://gym.example.com/mpesa/cb", "https://gym.example.com/hooks/M-PESA/cb",
    "https://gym.example.com/Safaricom/cb", "https://gym.example.com/hooks/EXEC",
    "https://gym.example.com/run.exe", "https://gym.example.com/cmd/x",
    "https://gym.example.com/MySQL/x", "https://gym.example.com/x?QUERY=1",
    "https://mpesa-hooks.example.com/x",
])
def test_callback_urls_with_banned_words_are_refused_in_any_case(url):
    with pytest.raises(DarajaFieldError) as exc:
        valid(callback_url=url)
    assert exc.value.field == "callback_url"
    assert "refuses" in exc.value.message


@pytest.mark.parametrize("url", ["", "/hooks/daraja/stk/x", "ftp://gym.example.com/x",
                                 "https://gym.example.com/a b", "https://gym.example.com/x\n",
                                 "https:///nohost"])
def test_callback_urls_must_be_absolute_http_without_spaces(url):
    with pytest.raises(DarajaFieldError) as exc:
        valid(callback_url=url)
    assert exc.value.field == "callback_url"


def test_live_daraja_needs_https_callbacks():
    assert valid(callback_url="http://gym.example.com/hooks/daraja/stk/x").callback_url
    with pytest.raises(DarajaFieldError, match="https"):
        valid(callback_url="http://gym.example.com/hooks/daraja/stk/x", require_https=True)


# -- ResultCodes, retry verdicts, token refresh -------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    (0, "0"), ("0", "0"), (1032, "1032"), (1032.0, "1032"), ("1032", "1032"), (" 1037 ", "1037"),
    ("R000002", "R000002"), ("SFC_IC0003", "SFC_IC0003"), (Decimal("0"), "0"), (None, None),
    ("", None),
])
def test_result_codes_are_strings(value, expected):
    assert result_code_str(value) == expected


@pytest.mark.parametrize("status, code, message, expected", [
    (500, "500.001.1001", "Unable to lock subscriber, a transaction is already in process for the "
                          "current subscriber", True),
    (500, "500.001.1001", "The transaction is being processed", True),
    (500, "500.001.1001", "Wrong credentials", False),
    (500, "500.001.1001", "Merchant does not exist", False),
    (500, "500.003.02", "Spike Arrest Violation", True),
    (500, "500.003.03", "Quota Violation", True),
    (500, "500.003.1001", "Urls are already registered", False),
    (500, "500.003.1001", "Internal Server Error", True),
    (400, "400.002.02", "Bad Request - Invalid Amount", False),
    (404, "404.001.03", "Invalid Access Token", False),
    (502, None, None, None),  # no Daraja verdict: the status decides
])
def test_daraja_retry_verdicts(status, code, message, expected):
    assert daraja_retryable(status, code, message) is expected


def test_tokens_are_refreshed_five_minutes_early():
    fetched = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    expires = fetched + timedelta(seconds=3599)
    assert not refresh_due(expires, fetched, fetched + timedelta(minutes=54))
    assert refresh_due(expires, fetched, expires - timedelta(minutes=5))
    assert refresh_due(expires, fetched, expires + timedelta(seconds=1))
    # A short-lived token is used for half its life rather than never.
    short = fetched + timedelta(seconds=60)
    assert not refresh_due(short, fetched, fetched + timedelta(seconds=29))
    assert refresh_due(short, fetched, fetched + timedelta(seconds=30))


# -- Our callback URLs --------------------------------------------------------------------------


def _settings(**changes):
    base = {"public_base_url": "https://portal.gym.co.ke", "daraja_callback_token": "s3cret-T0ken"}
    return dataclasses.replace(get_settings(), **{**base, **changes})


def test_callback_urls_carry_the_token_and_pass_daraja_rules():
    urls = callback_urls.all_callback_urls(_settings())
    assert urls == {
        "stk": "https://portal.gym.co.ke/hooks/daraja/stk/s3cret-T0ken",
        "c2b_confirmation": "https://portal.gym.co.ke/hooks/daraja/c2b/confirmation/s3cret-T0ken",
        "c2b_validation": "https://portal.gym.co.ke/hooks/daraja/c2b/validation/s3cret-T0ken",
        "result": "https://portal.gym.co.ke/hooks/daraja/result/s3cret-T0ken",
        "timeout": "https://portal.gym.co.ke/hooks/daraja/timeout/s3cret-T0ken",
    }
    for url in urls.values():
        assert banned_url_word(url) is None
        assert valid(callback_url=url, require_https=True).callback_url == url


def test_callback_token_is_escaped_in_the_path():
    assert callback_urls.stk_callback_url(_settings(daraja_callback_token="a/b c")).endswith(
        "/hooks/daraja/stk/a%2Fb%20c")


@pytest.mark.parametrize("changes, variable", [
    ({"daraja_callback_token": ""}, "DARAJA_CALLBACK_TOKEN"),
    ({"daraja_callback_token": "xK9exeQ2"}, "DARAJA_CALLBACK_TOKEN"),  # random tokens can do this
    ({"daraja_callback_token": "a-SQL-b"}, "DARAJA_CALLBACK_TOKEN"),
    ({"public_base_url": "https://execfitness.co.ke"}, "PUBLIC_BASE_URL"),
])
def test_callback_urls_refuse_settings_daraja_would_refuse(changes, variable):
    with pytest.raises(SettingsError, match=variable):
        callback_urls.stk_callback_url(_settings(**changes))
