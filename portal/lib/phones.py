"""Kenyan mobile numbers, normalised the way M-Pesa wants them: 2547XXXXXXXX or 2541XXXXXXXX."""

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType


class PhoneError(ValueError):
    pass


def normalise_phone(text: str) -> str:
    """Accept any common way of writing a Kenyan mobile ('0712 345 678', '+254712345678',
    '712345678', '254-112-345-678') and return '2547XXXXXXXX' / '2541XXXXXXXX'."""
    raw = (text or "").strip()
    if not raw:
        raise PhoneError("enter a phone number")
    digits = "".join(ch for ch in raw if ch.isdigit())
    if raw.startswith("254") or (digits.startswith("254") and len(digits) == 12):
        raw = "+" + digits
    try:
        number = phonenumbers.parse(raw, "KE")
    except NumberParseException:
        raise PhoneError("not a phone number") from None
    if number.country_code != 254 or not phonenumbers.is_valid_number(number):
        raise PhoneError("not a valid Kenyan phone number")
    if phonenumbers.number_type(number) not in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE):
        raise PhoneError("use a mobile number (M-Pesa needs one)")
    national = str(number.national_number)
    if len(national) != 9 or national[0] not in "17":
        raise PhoneError("use a Safaricom/Airtel mobile number starting 07 or 01")
    return "254" + national


def display_phone(normalised: str) -> str:
    """2547XXXXXXXX -> 0712 345 678, the way people read numbers at the desk."""
    if len(normalised) == 12 and normalised.startswith("254"):
        n = "0" + normalised[3:]
        return f"{n[:4]} {n[4:7]} {n[7:]}"
    return normalised
