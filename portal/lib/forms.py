"""Form parsing: text in, domain values or per-field errors out. No framework here.

Each parser returns (values, errors): `values` keeps what was typed (so a form re-shown after an
error loses nothing) with the clean domain value where parsing succeeded; `errors` maps a field
name to a message written for the person at the desk.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Mapping

from portal.lib.i18n import S_
from portal.lib.money import Money, MoneyParseError
from portal.lib.phones import PhoneError, normalise_phone

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

Form = Mapping[str, str]


# PostgreSQL's integer (int4), the type of every id and count column: a larger number names
# nothing the portal keeps, and sent as a query argument it is a database error, not an answer.
INT_MAX = 2**31 - 1
# Dates people may mean. Outside this a date is a typo or a probe, and date arithmetic on it
# (the day after 9999-12-31) fails in Python before any page could answer.
MIN_DATE, MAX_DATE = date(1900, 1, 1), date(2999, 12, 31)


def whole(text: str | None, maximum: int = INT_MAX) -> int | None:
    """Typed text that is a whole number the database can hold, else None. ASCII digits only:
    str.isdigit also says yes to '²', which int() refuses, and to '١٢', which it reads as 12."""
    raw = (text or "").strip()
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(maximum)):
        return None
    value = int(raw)
    return value if value <= maximum else None


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:]


def _text(form: Form, name: str) -> str:
    return (form.get(name) or "").strip()


def member_form(form: Form, location_ids: set[int]) -> tuple[dict, dict]:
    values = {k: _text(form, k) for k in ("first_name", "last_name", "phone", "email", "notes", "home_location")}
    values["reminder_opt_out"] = form.get("reminder_opt_out") in ("on", "1", "true")
    values["message_channel"] = _text(form, "message_channel") or "sms"
    values["language"] = _text(form, "language") or "en"
    errors: dict[str, str] = {}
    clean: dict = {"notes": values["notes"], "reminder_opt_out": values["reminder_opt_out"]}

    for name, label in (("first_name", "First name"), ("last_name", "Last name")):
        if not values[name]:
            errors[name] = f"{label} is required"
        elif len(values[name]) > 60:
            errors[name] = f"{label} is too long (60 characters at most)"
        else:
            clean[name] = values[name]

    try:
        clean["phone"] = normalise_phone(values["phone"])
    except PhoneError as e:
        errors["phone"] = _sentence(str(e))

    email = values["email"]
    if email and (len(email) > 255 or not EMAIL_RE.match(email)):
        errors["email"] = S_("That does not look like an email address")
    clean["email"] = email.lower() or None

    loc = values["home_location"]
    if loc:
        if whole(loc) not in location_ids:
            errors["home_location"] = S_("Choose a location from the list")
        else:
            clean["home_location"] = whole(loc)
    else:
        clean["home_location"] = None

    if values["message_channel"] not in MESSAGE_CHANNELS:
        errors["message_channel"] = S_("Choose SMS, email or both")
    elif values["message_channel"] != "sms" and not clean["email"]:
        errors["message_channel"] = S_("Add an email address to send by email")
    else:
        clean["message_channel"] = values["message_channel"]

    if values["language"] not in MEMBER_LANGUAGES:
        errors["language"] = S_("Choose English or Kiswahili")
    else:
        clean["language"] = values["language"]

    if len(values["notes"]) > 2000:
        errors["notes"] = S_("Notes are too long (2,000 characters at most)")
    return ({**values, "clean": clean} if not errors else values), errors


MESSAGE_CHANNELS = {"sms": "SMS", "email": "Email", "both": "Email and SMS"}
# What a member reads SMS, emails, the pay page and receipts in (portal/lib/i18n.py: LANGUAGES).
MEMBER_LANGUAGES = {"en": "English", "sw": "Kiswahili"}


def name_and_price(values: dict, errors: dict, clean: dict, currency: str, what: str) -> None:
    """The name (required, 60 characters at most) and the price (more than nothing) of a plan or
    a catalogue item: into `clean` when good, a message into `errors` when not."""
    if not values["name"]:
        errors["name"] = S_("Name is required")
    elif len(values["name"]) > 60:
        errors["name"] = S_("Name is too long (60 characters at most)")
    else:
        clean["name"] = values["name"]
    try:
        price = Money.parse(values["price"], currency)
        if price.amount <= 0:
            # Nothing to bill is no invoice the ledger can hold; a waived fee is a discount (issue 14).
            errors["price"] = "Price cannot be negative" if price.amount < 0 else f"{what} must cost something"
        clean["price"] = price
    except MoneyParseError as e:
        errors["price"] = _sentence(str(e))


def plan_form(form: Form, currency: str) -> tuple[dict, dict]:
    values = {k: _text(form, k) for k in ("name", "price", "duration_months", "duration_days")}
    values["active"] = form.get("active") in ("on", "1", "true")
    errors: dict[str, str] = {}
    clean: dict = {"active": values["active"]}
    name_and_price(values, errors, clean, currency, "A plan")
    for name in ("duration_months", "duration_days"):
        number = whole(values[name] or "0", 120 * (30 if name == "duration_days" else 1))
        if number is None:
            errors[name] = S_("Use a whole number")
        else:
            clean[name] = number
    if "duration_months" in clean and "duration_days" in clean and clean["duration_months"] + clean["duration_days"] == 0:
        errors["duration_months"] = S_("A plan must last at least one day")
    return ({**values, "clean": clean} if not errors else values), errors


def _money(text: str, currency: str) -> tuple[Money | None, str | None]:
    """(amount, None), or (None, why what was typed is not an amount)."""
    try:
        return Money.parse(text, currency), None
    except MoneyParseError as e:
        return None, _sentence(str(e))


def confirmed_amount(form: Form, amount: Money | None) -> bool:
    """Staff ticked "confirm" for this very amount (the box carries the amount it was shown for):
    an amount changed after the question is asked about again."""
    if amount is None:
        return False
    try:
        return Money.parse(_text(form, "confirmed"), amount.currency) == amount
    except MoneyParseError:
        return False


def desk_payment_form(form: Form, currency: str) -> tuple[dict, dict]:
    """Cash, bank or cheque taken at the desk. Only what cannot be read is an error here; whether
    the values make a payment is for the payment rules (desk_payment_problems) to say. `clean` is
    there even when something could not be read, so those rules can be shown beside it."""
    values = {k: _text(form, k) for k in ("method", "amount", "reference", "invoice", "idempotency_key", "note",
                                          "location")}
    errors: dict[str, str] = {}
    amount, problem = _money(values["amount"], currency)
    if problem:
        errors["amount"] = problem
    if values["invoice"] and whole(values["invoice"]) is None:
        errors["invoice"] = S_("Choose an invoice")
    clean = {"method": values["method"], "amount": amount, "reference": values["reference"], "note": values["note"],
             "invoice_id": whole(values["invoice"]),
             # The desk, for a login that has none of its own (payments.service.desk_of).
             "location_id": whole(values["location"]),
             "confirmed": confirmed_amount(form, amount)}
    return {**values, "clean": clean}, errors


def stk_form(form: Form, currency: str) -> tuple[dict, dict]:
    """An M-Pesa prompt from the desk. The phone stays text: start_stk_push reads it, since it is
    also given numbers that never came through a form."""
    values = {k: _text(form, k) for k in ("phone", "amount", "invoice", "idempotency_key")}
    amount, problem = _money(values["amount"], currency)
    errors = {"amount": problem} if problem else {}
    # A stray invoice value asks for no particular invoice, as it always has on this form.
    clean = {"phone": values["phone"], "amount": amount,
             "invoice_id": whole(values["invoice"]),
             "confirmed": confirmed_amount(form, amount)}
    return ({**values, "clean": clean} if not errors else values), errors


def parse_date(text: str) -> date | None:
    """A date typed as 2026-11-30, between MIN_DATE and MAX_DATE, else None."""
    try:
        value = date.fromisoformat(text.strip())
    except (ValueError, AttributeError):
        return None
    return value if MIN_DATE <= value <= MAX_DATE else None


def discount_form(form: Form, currency: str) -> tuple[dict, dict]:
    """A discount asked for on an invoice: a percentage or an amount with a reason, or a promo
    code; and, for a discount above the desk's limit, the approving manager's name and password.
    The password is never shown back."""
    values = {k: _text(form, k) for k in ("kind", "value", "reason", "line", "promo_code", "manager_username")}
    values["kind"] = values["kind"] or "percent"
    errors: dict[str, str] = {}
    clean: dict = {"kind": values["kind"], "reason": values["reason"], "promo_code": values["promo_code"].upper(),
                   "manager_username": values["manager_username"], "manager_password": form.get("manager_password") or "",
                   "queue": form.get("action") == "queue", "value": None, "line_id": None}
    if values["kind"] not in ("percent", "amount"):
        errors["kind"] = "Choose percent or amount"
    if values["line"]:
        clean["line_id"] = whole(values["line"])
        if clean["line_id"] is None:
            errors["line"] = "Choose a line of this invoice"
    if not clean["promo_code"] or values["value"]:
        try:
            clean["value"] = Money.parse(values["value"], currency).amount
        except MoneyParseError as e:
            errors["value"] = ("Enter a percentage, e.g. 10" if values["kind"] == "percent" and not values["value"]
                               else _sentence(str(e)))
        if not clean["promo_code"] and not values["reason"]:
            errors["reason"] = "Give a reason for the discount"
    if clean["promo_code"] and not re.fullmatch(r"[A-Z0-9-]{3,30}", clean["promo_code"]):
        errors["promo_code"] = "A code is 3 to 30 letters, digits or dashes"
    if values["manager_username"] and not clean["manager_password"]:
        errors["manager_password"] = "The manager types their password"
    return {**values, "clean": clean}, errors


def promo_form(form: Form, currency: str, plan_ids: set[int], item_ids: set[int]) -> tuple[dict, dict]:
    """A promo code as a manager types it. Returns (values, errors); values["clean"] when good."""
    values = {k: _text(form, k) for k in ("code", "kind", "value", "description", "valid_from", "valid_to",
                                          "max_uses", "max_per_member")}
    values["code"] = values["code"].upper()
    # One checkbox per plan and item (plan_3, item_7): a form of repeated names is not a flat mapping.
    picked_plans = sorted(p for p in plan_ids if form.get(f"plan_{p}"))
    picked_items = sorted(i for i in item_ids if form.get(f"item_{i}"))
    values["plans"], values["items"] = picked_plans, picked_items
    errors: dict[str, str] = {}
    clean: dict = {"code": values["code"], "kind": values["kind"], "description": values["description"][:300]}
    if not re.fullmatch(r"[A-Z0-9-]{3,30}", values["code"]):
        errors["code"] = "A code is 3 to 30 letters, digits or dashes"
    if values["kind"] not in ("percent", "amount"):
        errors["kind"] = "Choose percent or amount"
    try:
        value = Money.parse(values["value"], currency).amount
        if value <= 0 or (values["kind"] == "percent" and value > 100):
            errors["value"] = "A percentage is more than 0 and at most 100" if values["kind"] == "percent" \
                else "A discount is more than nothing"
        clean["value"] = value
    except MoneyParseError as e:
        errors["value"] = _sentence(str(e))
    for name in ("valid_from", "valid_to"):
        clean[name] = parse_date(values[name])
        if clean[name] is None:
            errors[name] = "Enter a date, e.g. 2026-12-31"
    if clean.get("valid_from") and clean.get("valid_to") and clean["valid_to"] < clean["valid_from"]:
        errors["valid_to"] = "The last day cannot be before the first"
    for name in ("max_uses", "max_per_member"):
        if not values[name]:
            clean[name] = None
            continue
        clean[name] = whole(values[name], 1_000_000)
        if not clean[name]:
            errors[name] = "Leave empty for no limit, or a whole number from 1"
    clean["plans"], clean["items"] = picked_plans, picked_items
    return ({**values, "clean": clean} if not errors else values), errors

