"""Kenyan mobile numbers: the one rule for keeping them, and the one for M-Pesa prompts.

Kept (a member's phone, SMS, a payer's number): any Kenyan mobile, stored as 2547XXXXXXXX or
2541XXXXXXXX, the shape the member table's CHECK constraint holds. Every way a phone reaches the
portal (member forms, the M-Pesa forms, the pay page, a Paybill account typed as a phone, demo
data) goes through `normalise_phone`; code that meets a number already in that form (a C2B
MSISDN, an SMS address) asks `is_stored_form`.

M-Pesa prompts (STK Push): only Safaricom lines have M-Pesa, so `safaricom_phone` is
`normalise_phone` plus the carrier, told by the number's prefix.
"""

import re

import phonenumbers
from phonenumbers import NumberParseException, carrier

STORED_FORM = re.compile(r"254[17][0-9]{8}")

# What people type around the digits. Letters are refused rather than read as a keypad
# ("0712-FIT-678" would otherwise become 0712 348 678) or skipped ("PTF0712345678" would
# become a phone): a phone with letters in it is a typo, and a Paybill account with letters
# is a member or invoice number, never a phone.
_TYPED = re.compile(r"[0-9 +().-]+")

SAFARICOM = "Safaricom"


class PhoneError(ValueError):
    pass


def normalise_phone(text: str) -> str:
    """Accept any common way of writing a Kenyan mobile ('0712 345 678', '+254712345678',
    '712345678', '254-112-345-678') and return '2547XXXXXXXX' / '2541XXXXXXXX'.

    A Kenyan mobile is any 9-digit national number starting 7 or 1 (07XX XXX XXX, 01XX XXX
    XXX): the regulator's plan gives those two blocks to mobile networks and opens new ranges in
    them from time to time (the 01 block since 2019). phonenumbers is used to read what was typed,
    not to judge the range: its per-range validity lags new allocations (9.0.43 refuses 0109 XXX
    XXX although its own carrier data lists 010 as Airtel's), and refusing a member's real
    number is worse than keeping a number in a range not yet in use, which at worst receives no
    SMS. Whether M-Pesa can reach it is a separate question: `safaricom_phone`."""
    raw = (text or "").strip()
    if not raw:
        raise PhoneError("enter a phone number")
    if not _TYPED.fullmatch(raw):
        raise PhoneError("not a phone number")
    digits = "".join(ch for ch in raw if ch.isdigit())
    if raw.startswith("254") or (digits.startswith("254") and len(digits) == 12):
        raw = "+" + digits
    try:
        number = phonenumbers.parse(raw, "KE")
    except NumberParseException:
        raise PhoneError("not a phone number") from None
    national = str(number.national_number)
    if number.country_code != 254 or len(national) != 9:
        raise PhoneError("not a valid Kenyan phone number")
    if national[0] not in "17":
        raise PhoneError("use a mobile number (M-Pesa needs one)")
    return "254" + national


def is_stored_form(text: str) -> bool:
    """Is this already a number as the portal keeps it (2547XXXXXXXX / 2541XXXXXXXX)?"""
    return isinstance(text, str) and STORED_FORM.fullmatch(text) is not None


def carrier_of(phone: str) -> str:
    """The network a stored-form number was issued to ('Safaricom', 'Airtel', 'Telkom', ...), or
    '' when the range is not known to be in use.

    Told by prefix, from phonenumbers' carrier data. What 9.0.43 says for every 07XX and 01XX
    range: Safaricom 070-072, 0740-0743, 0745, 0746, 0748, 0749, 0757-0759, 0768, 0769, 079,
    011, 014 and 018; Airtel 073, 0750-0756, 0760, 0762-0767, 078, 010 (0100-0109) and
    0135-0139; Telkom 077, 0761 and 0120; a few small networks; the rest not in use. Every
    Safaricom range we know of (including 011X, which validators written for 07 miss) is there,
    so no prefix table of our own is added; a range Safaricom opens later arrives with a
    phonenumbers upgrade (tests/lib/test_phones.py pins the ranges above, so an upgrade that
    moves one shows). `name_for_valid_number`, not `name_for_number`: the latter answers '' for
    numbers outside the library's validity ranges, which lag its carrier data (0109).

    Kenya has mobile number portability: a number ported to Safaricom from another network keeps
    its old prefix and is refused here. Ported numbers are rare in Kenya, and a prompt to a
    number Safaricom does not serve fails anyway, later and less clearly."""
    if not is_stored_form(phone):
        return ""
    return carrier.name_for_valid_number(phonenumbers.parse("+" + phone), "en")


def safaricom_phone(text: str) -> str:
    """`normalise_phone`, for a number an M-Pesa prompt is sent to: it must be Safaricom's."""
    phone = normalise_phone(text)
    network = carrier_of(phone)
    if network == SAFARICOM:
        return phone
    if network:
        article = "an" if network[0] in "AEIOU" else "a"
        raise PhoneError(f"{display_phone(phone)} is {article} {network} number; M-Pesa prompts need a Safaricom number")
    raise PhoneError(f"{display_phone(phone)} is not a Safaricom number; M-Pesa prompts need a Safaricom number")


def display_phone(normalised: str) -> str:
    """2547XXXXXXXX -> 0712 345 678, the way people read numbers at the desk."""
    if len(normalised) == 12 and normalised.startswith("254"):
        n = "0" + normalised[3:]
        return f"{n[:4]} {n[4:7]} {n[7:]}"
    return normalised
