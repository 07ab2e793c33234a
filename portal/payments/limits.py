"""How much one payment may be, and when staff must look again at what they typed.

Two rules, each kept here once and applied by every way money comes in or goes back:

* a cap per method (settings: MPESA_MAX_AMOUNT, CASH_MAX_AMOUNT, ...): above it, refused;
* a large amount (LARGE_AMOUNT_CONFIRM) typed by staff is recorded only once they confirm it:
  the form comes back with everything kept and a box to tick. A member paying their own invoice
  on a pay link typed nothing, so nothing is asked of them.
"""

from __future__ import annotations

from decimal import Decimal

from portal.lib.errors import RuleBroken
from portal.lib.i18n import N_
from portal.lib.money import Money
from portal.settings import get_settings

# What staff and members call each method (portal.payments.service shows these too).
# Marked for translation (portal/lib/i18n.py): a member's receipt names the method in their language.
METHOD_LABELS = {"cash": N_("Cash"), "bank": N_("Bank transfer"), "cheque": N_("Cheque"), "mpesa": N_("M-Pesa"),
                 "card": N_("Card")}


class NeedsConfirmation(RuleBroken):
    """Not a refusal: the same request, sent again with confirmed=True, goes through."""


def method_limit(method: str) -> Decimal | None:
    """The most one payment by `method` may be (None: a method with no cap of its own)."""
    settings = get_settings()
    return {"cash": settings.cash_max_amount, "bank": settings.bank_max_amount,
            "cheque": settings.cheque_max_amount, "mpesa": settings.mpesa_max_amount,
            "card": settings.card_max_amount}.get(method)


def over_limit(method: str, amount: Money) -> RuleBroken | None:
    limit = method_limit(method)
    if limit is None or amount.amount <= limit:
        return None
    return RuleBroken(f"{METHOD_LABELS[method]} payments are limited to {Money(limit, amount.currency).format()} each",
                      field="amount")


def check_limit(method: str, amount: Money) -> None:
    problem = over_limit(method, amount)
    if problem:
        raise problem


def is_large(amount: Money) -> bool:
    return amount.amount > get_settings().large_amount_confirm


def check_confirmed(amount: Money, confirmed: bool) -> None:
    """Raise NeedsConfirmation for a large amount not yet confirmed."""
    if is_large(amount) and not confirmed:
        raise NeedsConfirmation(f"{amount.format()} is a large amount: check it and confirm", field="amount")
