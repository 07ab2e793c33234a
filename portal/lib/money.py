"""The one money type: an exact Decimal amount with its currency.

Floats never touch money: constructing Money from a float, or multiplying it by one, raises.
Amounts are kept to the currency's minor unit (2 places for KES); formatting happens at the edges.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?|-?\.[0-9]+")
LARGEST = Decimal(10) ** 10  # amounts are stored as numeric(12, 2)


class LossyMoneyError(TypeError):
    """Money met a float (or something else inexact): refusing rather than guessing."""


class MoneyParseError(ValueError):
    """Text that is not an amount of money."""


def _exact(value) -> Decimal:
    if isinstance(value, bool) or isinstance(value, float):
        raise LossyMoneyError(f"refusing {type(value).__name__} {value!r} as money: use Decimal or str")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, (int, str)):
        try:
            return Decimal(value)
        except InvalidOperation:
            raise MoneyParseError(f"not an amount: {value!r}") from None
    raise LossyMoneyError(f"refusing {type(value).__name__} as money")


@dataclass(frozen=True, order=False)
class Money:
    amount: Decimal
    currency: str = "KES"

    def __post_init__(self):
        amount = _exact(self.amount)
        if not amount.is_finite():
            raise MoneyParseError("amount must be finite")
        if amount != amount.quantize(CENT):
            raise MoneyParseError(f"{amount} has more than 2 decimal places")
        object.__setattr__(self, "amount", amount.quantize(CENT))
        object.__setattr__(self, "currency", self.currency.upper())

    @classmethod
    def zero(cls, currency: str = "KES") -> Money:
        return cls(Decimal("0"), currency)

    @classmethod
    def parse(cls, text: str, currency: str = "KES") -> Money:
        """Parse what a person types: '3,000', '3000.50', 'KES 3 000'."""
        cleaned = (text or "").strip().upper().removeprefix(currency).removeprefix("KSH").strip()
        cleaned = cleaned.replace(",", "").replace(" ", "").replace("\u00a0", "")
        if not cleaned:
            raise MoneyParseError("enter an amount")
        # Only plain decimal numbers: Decimal itself would also read '1e3', 'Infinity' or '٣'.
        if not PLAIN_NUMBER.fullmatch(cleaned):
            raise MoneyParseError(f"{text!r} is not an amount")
        value = Decimal(cleaned)
        if abs(value) >= LARGEST:
            raise MoneyParseError(f"{text!r} is more than any amount the portal keeps")
        if value != value.quantize(CENT):
            raise MoneyParseError("at most 2 decimal places")
        return cls(value, currency)

    def _check(self, other) -> Money:
        if not isinstance(other, Money):
            raise LossyMoneyError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise ValueError(f"currency mismatch: {self.currency} vs {other.currency}")
        return other

    def __add__(self, other: Money) -> Money:
        return Money(self.amount + self._check(other).amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        return Money(self.amount - self._check(other).amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __mul__(self, factor) -> Money:
        if isinstance(factor, (float, Money)) or isinstance(factor, bool):
            raise LossyMoneyError(f"refusing Money * {type(factor).__name__}")
        product = self.amount * _exact(factor)
        return Money(product.quantize(CENT, rounding=ROUND_HALF_UP), self.currency)

    __rmul__ = __mul__

    def __truediv__(self, other):
        raise LossyMoneyError("dividing money loses cents: use split()")

    def _cmp(self, other) -> tuple[Decimal, Decimal]:
        return self.amount, self._check(other).amount

    def __lt__(self, other):
        a, b = self._cmp(other)
        return a < b

    def __le__(self, other):
        a, b = self._cmp(other)
        return a <= b

    def __gt__(self, other):
        a, b = self._cmp(other)
        return a > b

    def __ge__(self, other):
        a, b = self._cmp(other)
        return a >= b

    def __bool__(self) -> bool:
        return self.amount != 0

    @property
    def is_whole(self) -> bool:
        return self.amount == self.amount.to_integral_value()

    def split(self, parts: int) -> list[Money]:
        """Split into `parts` amounts that add back exactly to the total (largest remainder)."""
        if parts < 1:
            raise ValueError("parts must be at least 1")
        cents = int(self.amount / CENT)
        base, extra = divmod(cents, parts)
        return [Money(Decimal(base + (1 if i < extra else 0)) * CENT, self.currency) for i in range(parts)]

    def format(self, symbol: bool = True) -> str:
        sign = "-" if self.amount < 0 else ""
        text = f"{abs(self.amount):,.2f}"
        if text.endswith(".00"):
            text = text[:-3]
        return f"{sign}{self.currency} {text}" if symbol else f"{sign}{text}"

    def __str__(self) -> str:
        return self.format()
