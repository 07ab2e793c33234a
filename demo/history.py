"""Years of a gym's money, simulated in memory for the bulk demo loader (demo.bulk).

Each member's history is replayed with the rules the app applies one request at a time, so the
rows are the ones the app would have written:

- put on a plan: a membership waiting `unpaid` and a `new` invoice (portal.members.enrol.put_on_plan);
- renewal invoices raised by the nightly job `RENEWAL_DAYS_BEFORE` days before a membership ends
  (portal.members.renewals);
- an invoice posts receivable / revenue + VAT, then any credit held is applied at once
  (portal.billing.invoices.issue_invoice, apply_credit);
- money received posts to the method's account and settles the chosen invoice, then the oldest
  due; any excess is kept as credit (portal.payments.service.complete_payment); an invoice paid
  in full starts or extends the membership (portal.members.memberships.on_invoice_paid);
- refunds come out of credit first (refund_payment); M-Pesa refunds are Daraja reversals
  (portal.payments.mpesa.reversal); voids reverse the invoice (void_invoice); both leave credit notes;
- every payment moves through the state machine with the texts each rail writes (desk, STK
  Push, Paybill, card checkout).

Left out: the audit log, raw gateway callbacks (events name the gateway's own id, such as
`daraja:ws_CO_...`, instead of a stored callback row), PDFs and messages.

Ids and document numbers are given after the whole gym is simulated, in time order
(`History.assign`), so they run with the calendar as they would in a live database.

Payment counts are exact: each member gets a budget of payments and their history is built to
spend it, ending on the current (or last) invoice; the calendar is then laid so the last payment
falls where the member's story says (paying now, or gone for months).
"""

from __future__ import annotations

import functools
import itertools
import json
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from demo.gym import demo_phone
from portal.billing.invoices import Line
from portal.lib.money import CENT, Money
from portal.lib.phones import SAFARICOM, carrier_of, display_phone
from portal.members.memberships import membership_end, status_on

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
DAY = timedelta(days=1)
SECOND = 1_000_000
MINUTE = 60 * SECOND
ZERO = Decimal("0.00")

ACCOUNT_FOR = {"cash": "cash", "bank": "bank", "cheque": "cheque", "mpesa": "mpesa", "card": "card"}
DESK_LABELS = {"cash": "Cash", "bank": "Bank transfer", "cheque": "Cheque"}

# About how many payments (failed tries and parts included) one invoice takes.
PAYMENTS_PER_INVOICE = 1.45
# How members settle an invoice, and (per try) how a prompt or checkout fails. Mostly M-Pesa
# and cash, as at a Nairobi gym.
RAILS = ["stk", "c2b", "cash", "card", "bank", "cheque"]
RAIL_WEIGHTS = [36, 24, 28, 5, 5, 2]
# Of the members who never paid by M-Pesa, the share on Airtel (the rest are Safaricom's).
AIRTEL_SHARE = 0.3
STK_FAILURES = [  # (weight, status, reason, result code)
    (40, "cancelled", "Cancelled by the member on the phone", "1032"),
    (18, "failed", "No answer on the phone in time", "1037"),
    (14, "failed", "Wrong M-Pesa PIN entered", "2001"),
    (18, "failed", "Not enough money in the member's M-Pesa", "1"),
    (4, "expired", "The M-Pesa request expired", "1019"),
    (6, "expired", "No answer from the phone in time", ""),  # the sweeper gave up on it
]
STK_DESCRIPTIONS = {"1032": "Request cancelled by user", "1037": "DS timeout user cannot be reached",
                    "2001": "The initiator information is invalid.", "1": "The balance is insufficient for the transaction.",
                    "1019": "Transaction has expired"}
CARD_BRANDS = [("VISA", 6), ("MASTERCARD", 4)]
CARD_FEE_RATE = Decimal("0.014")  # Flutterwave's local card fee, as its sandbox charges

FIRST_NAMES_EXTRA = ["Moraa", "Kerubo", "Wairimu", "Muthoni", "Adhiambo", "Awino", "Jeptoo", "Chepkoech",
                     "Naliaka", "Makena", "Kioko", "Musyoka", "Ndirangu", "Kipkemboi", "Ruto", "Wafula",
                     "Oduya", "Mbugua", "Gachanja", "Nduta", "Nasimiyu", "Auma", "Sharon", "Cynthia", "Brenda",
                     "Stephen", "Peter", "James", "John", "Mary", "Ann", "Lucy", "Esther", "Daniel", "David"]
LAST_NAMES_EXTRA = ["Mutiso", "Kilonzo", "Nzioka", "Mwaura", "Githinji", "Kinyua", "Wachira", "Macharia",
                    "Kiptoo", "Bett", "Sang", "Tanui", "Achieng", "Atieno", "Okello", "Ogola", "Nyongesa",
                    "Juma", "Abdalla", "Omar", "Hassan", "Nduati", "Karanja", "Waweru", "Kuria"]


# --- rows -----------------------------------------------------------------------------------------
# Plain slotted objects: millions of them are alive at once. `us` is the moment (microseconds
# since the epoch, UTC), `seq` the order of creation, which breaks ties between rows written by
# one request.

class Row:
    __slots__ = ("id", "us", "seq")


class MemberRow(Row):
    __slots__ = ("number", "first", "last", "phone", "email", "location", "opt_out", "status", "created_by")

    @property
    def label(self) -> str:
        return self.number


class MembershipRow(Row):
    __slots__ = ("member", "plan", "start", "end", "status", "price", "created_by")


class InvoiceRow(Row):
    __slots__ = ("member", "kind", "plan", "membership", "period_start", "issue_date", "due_date", "subtotal", "tax",
                 "total", "paid", "status", "void_reason", "created_by", "number", "line", "lines", "paused")

    @property
    def label(self) -> str:
        return self.number


class PaymentRow(Row):
    __slots__ = ("member", "invoice", "method", "amount", "refunded", "status", "reference", "receipt_number",
                 "receipt_year", "key", "staff", "location", "note", "completed_us", "phone", "gateway_ref",
                 "gateway_request", "expires_us", "next_check_us", "card_brand", "card_last4")

    @property
    def label(self) -> str:
        return self.receipt_number


class EventRow(Row):
    __slots__ = ("payment", "old", "new", "reason", "staff", "gateway_event", "details", "kind")


class EntryRow(Row):
    __slots__ = ("kind", "memo", "staff", "invoice", "payment", "gateway_event", "legs")


class AllocationRow(Row):
    __slots__ = ("invoice", "payment", "amount", "entry")


class CreditNoteRow(Row):
    __slots__ = ("kind", "member", "invoice", "payment", "amount", "reason", "staff", "number", "year")


class LineRow(Row):
    __slots__ = ("invoice", "description", "quantity", "unit_price", "vat_rate", "vat_inclusive", "net", "vat", "total")


class SaleRow(Row):
    __slots__ = ("invoice", "member", "buyer_name", "method", "payment", "tendered", "change", "key", "staff",
                 "location")


class SaleLineRow(Row):
    __slots__ = ("sale", "line", "item")


class PackRow(Row):
    __slots__ = ("member", "item", "sale", "sessions", "used")


class UseRow(Row):
    __slots__ = ("pack", "staff")


class DiscountRow(Row):
    __slots__ = ("invoice", "member", "line", "discount_line", "kind", "value", "amount", "net", "vat", "reason",
                 "promo", "status", "requested_by", "approved_by", "decided_us", "note", "entry")


class PromoRow(Row):
    __slots__ = ("code", "kind", "value", "description", "valid_from", "valid_to", "max_uses", "max_per_member",
                 "created_by")


class FreezeRow(Row):
    __slots__ = ("membership", "member", "start", "end", "days", "reason", "ended_reason", "ended_by", "ended_us",
                 "created_by")


class PayerRow(Row):
    __slots__ = ("kind", "name", "phone", "email", "address", "kra_pin", "created_by", "members")


class PayerMemberRow(Row):
    __slots__ = ("payer", "member", "linked_by")


class BillToRow(Row):
    __slots__ = ("invoice", "payer")


class ReversalRow(Row):
    __slots__ = ("payment", "amount", "reason", "staff", "originator", "conversation", "finished_us")


# Issue 14's tables (rows made by demo.extras), in foreign-key order: table -> the History list.
EXTRA_TABLES = {"payer": "payers", "payer_member": "payer_members", "invoice_bill_to": "bill_tos",
                "promo_code": "promos", "discount": "discounts", "sale": "sales", "sale_line": "sale_lines",
                "session_pack": "packs", "session_use": "uses", "membership_freeze": "freezes"}


# Start dates repeat across thousands of members: the calendar sums are worth keeping.
_membership_end = functools.lru_cache(maxsize=None)(membership_end)


def lazy(template: str, row) -> tuple[str, object]:
    """Text that names a document number, known only once numbers are given out."""
    return (template, row)


def text(value) -> str:
    if isinstance(value, tuple):
        template, row = value
        return template.replace("{}", row.label)
    return value


def money(amount: Decimal) -> str:
    return str(amount.quantize(CENT))


# --- the gym --------------------------------------------------------------------------------------

@dataclass
class PlanTerms:
    id: int
    name: str
    months: int
    days: int
    price: Decimal
    currency: str
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    vat_rate: Decimal
    vat_inclusive: bool

    @classmethod
    def of(cls, plan: dict, vat_rate: Decimal, vat_inclusive: bool) -> PlanTerms:
        line = Line(f"{plan['name']} membership", Money(plan["price"], plan["currency"]), 1, vat_rate, vat_inclusive)
        net, vat, total = line.amounts()
        return cls(plan["id"], plan["name"], plan["duration_months"], plan["duration_days"], plan["price"],
                   plan["currency"], net.amount, vat.amount, total.amount, vat_rate, vat_inclusive)

    @property
    def days_long(self) -> int:
        return self.months * 30 + self.days


@dataclass
class Gym:
    """What the simulation needs from the database: plans, locations, who works where."""

    plans: list[PlanTerms]
    plan_weights: list[int]
    locations: list[int]
    location_weights: list[int]
    desk: dict[int, list[int]]  # location -> front-desk staff ids
    manager: int
    tz: ZoneInfo
    member_prefix: str
    renewal_days_before: int
    stk_timeout_seconds: int
    shortcode: str
    currency: str
    now: datetime
    items: dict = field(default_factory=dict)  # the catalogue by name (demo.extras: desk sales)
    walkin: int | None = None  # the walk-in account's member id (portal.sales.walkin)
    promos: dict = field(default_factory=dict)  # promo codes made by an earlier load, by code
    today: date = field(init=False)

    def __post_init__(self):
        self.today = self.now.astimezone(self.tz).date()


@dataclass
class Period:
    """How one invoice gets paid: failed tries, then the money in one or more parts."""

    offset: int  # days after the invoice is issued that the member first tries
    minute: int  # minute of the day of that try
    rail: str
    failures: list[tuple] = field(default_factory=list)  # ("stk", status, reason, code) | ("card", status)
    parts: int = 1
    gaps: list[int] = field(default_factory=list)
    extra: str = ""  # "" | overpay | overpay_refund | duplicate
    outcome: str = "paid"  # paid | partial | unpaid (only the last period)
    to_invoice: bool = True  # the payer names the invoice (else: oldest open first)
    refund_after: int = 2

    @property
    def payments(self) -> int:
        return len(self.failures) + (self.parts if self.outcome != "unpaid" else 0) + (self.extra == "duplicate")


class Future(Exception):
    """The laid-out history runs past now: lay it out earlier."""

    def __init__(self, days: int):
        self.days = days


ROW_LISTS = ("memberships", "invoices", "payments", "events", "entries", "allocations", "notes", "reversals", "lines",
             "sales", "sale_lines", "packs", "uses", "discounts", "freezes", "bill_tos")


class Rows:
    """The rows a history writes, table by table: one member's life keeps its own until the life
    fits before now, then the whole gym takes them (`take`)."""

    def __init__(self):
        self.memberships: list[MembershipRow] = []
        self.invoices: list[InvoiceRow] = []
        self.payments: list[PaymentRow] = []
        self.events: list[EventRow] = []
        self.entries: list[EntryRow] = []
        self.allocations: list[AllocationRow] = []
        self.notes: list[CreditNoteRow] = []
        self.reversals: list[ReversalRow] = []
        # Issue 14's kinds (demo.extras): invoice lines, desk sales, discounts, freezes, invoices to payers.
        self.lines: list[LineRow] = []
        self.sales: list[SaleRow] = []
        self.sale_lines: list[SaleLineRow] = []
        self.packs: list[PackRow] = []
        self.uses: list[UseRow] = []
        self.discounts: list[DiscountRow] = []
        self.freezes: list[FreezeRow] = []
        self.bill_tos: list[BillToRow] = []

    def take(self, other: Rows) -> None:
        for rows in ROW_LISTS:
            getattr(self, rows).extend(getattr(other, rows))


# --- one member's life ----------------------------------------------------------------------------

class Life(Rows):
    """One member's history through the app's rules, into row lists of its own (kept only once
    the whole history fits before now)."""

    def __init__(self, history: History, member: MemberRow, plan: PlanTerms, rng: random.Random):
        super().__init__()
        self.h, self.gym, self.member, self.plan, self.rng = history, history.gym, member, plan, rng
        self.receivable = ZERO
        self.credit = ZERO
        self.open: list[InvoiceRow] = []
        self.current: MembershipRow | None = None
        self.clock = 0
        self._day, self.day_ends = date.min, 0
        self.still_to_come = 0  # days the periods not yet played will take, roughly
        self.last_payment_day: date | None = None
        # demo.extras: the rate this member's plan invoices are discounted by, and who they are addressed to.
        self.terms = None
        self.payer: PayerRow | None = None
        self.freeze_plan: list | None = None
        desks = self.gym.desk.get(member.location) or [s for staff in self.gym.desk.values() for s in staff]
        self.desk = desks[rng.randrange(len(desks))]
        self.desk_location = member.location if self.gym.desk.get(member.location) else next(
            loc for loc, staff in self.gym.desk.items() if self.desk in staff)

    # time ----------------------------------------------------------------------------------------

    def at(self, day: date, minute: int, second: int = 0) -> int:
        """The moment `minute` past midnight on `day` at the gym; today's moments are squeezed
        between 06:00 and a few minutes ago, keeping their order. Never earlier than this
        member's last row."""
        if day > self.gym.today:
            raise Future((day - self.gym.today).days + self.still_to_come)
        us = self.h.midnight(day) + minute * MINUTE + second * SECOND
        if day == self.gym.today:
            start = self.h.midnight(day) + 6 * 60 * MINUTE
            limit = self.h.now_us - 5 * MINUTE
            if limit <= start:
                raise Future(1 + self.still_to_come)
            us = start + (us - start) * (limit - start) // (24 * 60 * MINUTE - 6 * 60 * MINUTE) if us > start else us
            if us > limit:
                raise Future(1 + self.still_to_come)
        self.clock = max(us, self.clock + 1000)
        if self.clock >= self.day_ends:
            self._new_day()
        return self.clock

    def day(self) -> date:
        """The business day at this member's clock."""
        if self.clock >= self.day_ends:
            self._new_day()
        return self._day

    def _new_day(self) -> None:
        self._day = self.h.local_day(self.clock)
        self.day_ends = self.h.midnight(self._day + DAY)

    def later(self, seconds: int) -> int:
        us = self.clock + seconds * SECOND
        if us > self.h.now_us - MINUTE:
            us = max(self.clock + 1000, self.h.now_us - MINUTE)
        self.clock = us
        return us

    def _row(self, cls):
        row = cls()
        row.id = None
        row.us = self.clock
        row.seq = next(self.h.seq)
        return row

    # the ledger ----------------------------------------------------------------------------------

    def post(self, kind: str, legs: list[tuple], memo, *, staff=None, invoice=None, payment=None,
             gateway_event=None) -> EntryRow:
        legs = [leg for leg in legs if leg[3] != 0]
        assert sum(leg[3] for leg in legs) == 0, (kind, legs)
        entry = self._row(EntryRow)
        entry.kind, entry.memo, entry.staff, entry.invoice, entry.payment = kind, memo, staff, invoice, payment
        entry.gateway_event, entry.legs = gateway_event, legs
        for account, member, _location, amount in legs:
            if account == "receivable":
                self.receivable += amount
            elif account == "member_credit":
                self.credit -= amount
        self.entries.append(entry)
        return entry

    # invoices (portal.billing.invoices) -------------------------------------------------------------------

    def issue(self, kind: str, membership: MembershipRow, period_start: date, due: date, staff) -> InvoiceRow:
        p = self.plan
        end = _membership_end(period_start, p.months, p.days)
        inv = self._row(InvoiceRow)
        inv.member, inv.kind, inv.plan, inv.membership = self.member, kind, p, membership
        inv.period_start, inv.issue_date, inv.due_date = period_start, self.day(), due
        inv.subtotal, inv.tax, inv.total, inv.paid = p.subtotal, p.tax, p.total, ZERO
        inv.status, inv.void_reason, inv.created_by, inv.number = "open", "", staff, None
        inv.line, inv.paused = self.h.line(p, period_start, end), ""
        inv.lines = [self.line_row(inv, inv.line, 1, p.price, p.vat_rate, p.vat_inclusive, p.subtotal, p.tax, p.total)]
        self.invoices.append(inv)
        self.open.append(inv)
        self.post("invoice_issued", [("receivable", self.member, None, p.total), ("revenue", None, None, -p.subtotal),
                                     ("vat_payable", None, None, -p.tax)],
                  lazy("Invoice {}", inv), staff=staff, invoice=inv)
        self.apply_credit(staff)
        if self.h.extras:
            self.h.extras.on_plan_invoice(self, inv)
        return inv

    def line_row(self, inv: InvoiceRow, description: str, quantity: int, unit_price: Decimal, vat_rate: Decimal,
                 vat_inclusive: bool, net: Decimal, vat: Decimal, total: Decimal) -> LineRow:
        row = self._row(LineRow)
        row.invoice, row.description, row.quantity, row.unit_price = inv, description, quantity, unit_price
        row.vat_rate, row.vat_inclusive, row.net, row.vat, row.total = vat_rate, vat_inclusive, net, vat, total
        self.lines.append(row)
        return row

    def apply_credit(self, staff) -> None:
        owed, held = self.receivable, self.credit
        if owed <= 0 or held <= 0:
            return
        usable = min(owed, held)
        entry = self.post("credit_applied", [("member_credit", self.member, None, usable),
                                             ("receivable", self.member, None, -usable)],
                          "Credit applied to open invoices", staff=staff)
        _, left = self.settle(usable, None, entry, None, staff)
        assert not left

    def settle(self, amount: Decimal, payment: PaymentRow | None, entry: EntryRow, chosen: InvoiceRow | None,
               staff) -> tuple[list, Decimal]:
        invoices = sorted(self.open, key=lambda inv: (inv.due_date, inv.seq))
        if chosen is not None:
            invoices.sort(key=lambda inv: inv is not chosen)
        left, settled = amount, []
        for inv in invoices:
            if not left:
                break
            due = inv.total - inv.paid
            part = min(due, left)
            if part:
                self.allocate(inv, part, payment, entry, staff)
                settled.append((inv, part))
                left -= part
        return settled, left

    def allocate(self, inv: InvoiceRow, amount: Decimal, payment, entry: EntryRow, staff) -> None:
        row = self._row(AllocationRow)
        row.invoice, row.payment, row.amount, row.entry = inv, payment, amount, entry
        self.allocations.append(row)
        was = inv.status
        inv.paid += amount
        inv.status = "open" if inv.paid <= 0 else ("paid" if inv.paid >= inv.total else "partially_paid")
        if inv.status == "paid":
            self.open.remove(inv)
            if was != "paid":
                self.on_paid(inv, self.day(), staff)

    def on_paid(self, inv: InvoiceRow, paid_on: date, staff) -> None:
        p = self.plan
        if inv.kind == "new" and inv.membership.status == "unpaid":
            ms = inv.membership
            ms.start = max(ms.start, paid_on)
            ms.end = _membership_end(ms.start, p.months, p.days)
            ms.status = status_on(ms.start, ms.end, paid_on)
            self.current = ms
        elif inv.kind == "renewal":
            old = inv.membership
            start = old.end + timedelta(days=1) if old.end >= paid_on else paid_on
            ms = self._row(MembershipRow)
            ms.member, ms.plan, ms.start, ms.end = self.member, p, start, _membership_end(start, p.months, p.days)
            ms.status, ms.price, ms.created_by = status_on(start, ms.end, paid_on), inv.total, staff
            self.memberships.append(ms)
            self.current = ms

    def void(self, inv: InvoiceRow, reason: str, staff) -> None:
        paid = inv.paid
        entry = self.post("void", [("receivable", self.member, None, -inv.total), ("revenue", None, None, inv.subtotal),
                                   ("vat_payable", None, None, inv.tax), ("receivable", self.member, None, paid),
                                   ("member_credit", self.member, None, -paid)],
                          lazy(f"Void {{}}: {reason}", inv), staff=staff, invoice=inv)
        if paid:
            row = self._row(AllocationRow)
            row.invoice, row.payment, row.amount, row.entry = inv, None, -paid, entry
            self.allocations.append(row)
        inv.status, inv.paid, inv.void_reason = "void", ZERO, reason
        if inv in self.open:
            self.open.remove(inv)
        if inv.kind == "new" and inv.membership.status == "unpaid":
            inv.membership.status = "cancelled"
        self.note("void", inv.total, reason, staff, invoice=inv)
        self.apply_credit(staff)

    def note(self, kind: str, amount: Decimal, reason: str, staff, invoice=None, payment=None) -> CreditNoteRow:
        row = self._row(CreditNoteRow)
        row.kind, row.member, row.invoice, row.payment, row.amount = kind, self.member, invoice, payment, amount
        row.reason, row.staff, row.number, row.year = reason, staff, None, self.day().year
        self.notes.append(row)
        return row

    # payments (portal.payments) -------------------------------------------------------------------

    def payment(self, method: str, amount: Decimal, invoice, *, staff, location, reference="", key=None, note="",
                phone="", gateway_ref=None, gateway_request=None) -> PaymentRow:
        pay = self._row(PaymentRow)
        pay.member, pay.invoice, pay.method, pay.amount, pay.refunded = self.member, invoice, method, amount, ZERO
        pay.status, pay.reference, pay.receipt_number, pay.receipt_year = "pending", reference, None, None
        pay.key = key or self.h.token()
        pay.staff, pay.location, pay.note, pay.completed_us, pay.phone = staff, location, note, None, phone
        pay.gateway_ref, pay.gateway_request, pay.expires_us, pay.next_check_us = gateway_ref, gateway_request, None, None
        pay.card_brand, pay.card_last4 = "", ""
        self.payments.append(pay)
        return pay

    def event(self, pay: PaymentRow, old: str, new: str, reason, *, staff=None, gateway_event=None, details=None,
              kind: str = "status"):
        row = self._row(EventRow)
        row.payment, row.old, row.new, row.reason, row.staff = pay, old, new, reason, staff
        row.gateway_event, row.details, row.kind = gateway_event, details, kind
        self.events.append(row)

    def transition(self, pay: PaymentRow, new: str, reason, *, staff=None, gateway_event=None, details=None):
        old, pay.status = pay.status, new
        if new == "completed":
            pay.completed_us = self.clock
        self.event(pay, old, new, reason, staff=staff, gateway_event=gateway_event, details=details or {})

    def complete(self, pay: PaymentRow, reason, *, staff=None, gateway_event=None) -> None:
        pay.receipt_year = self.day().year
        self.transition(pay, "completed", reason, staff=staff, gateway_event=gateway_event)
        entry = self.post("payment_received", [(ACCOUNT_FOR[pay.method], None, pay.location, pay.amount),
                                               ("receivable", self.member, None, -pay.amount)],
                          lazy("Receipt {}", pay), staff=staff, payment=pay, gateway_event=gateway_event)
        settled, left = self.settle(pay.amount, pay, entry, pay.invoice, staff)
        if left:
            self.post("credit_held", [("receivable", self.member, None, left),
                                      ("member_credit", self.member, None, -left)],
                      lazy("Credit from {}", pay), staff=staff, payment=pay)
        self.event(pay, "completed", "completed", "settled", staff=staff, gateway_event=gateway_event,
                   details=(settled, left, self.receivable, self.credit), kind="settlement")
        self.last_payment_day = self.day()

    def refund(self, pay: PaymentRow, amount: Decimal, reason: str, staff) -> None:
        from_credit = min(self.credit, amount) if self.credit > 0 else ZERO
        from_invoices = amount - from_credit
        # The histories here only refund what sits as credit, so no invoice reopens.
        assert from_invoices == 0, "bulk refunds come out of credit"
        self.post("refund", [("member_credit", self.member, None, from_credit),
                             (ACCOUNT_FOR[pay.method], None, pay.location, -amount)],
                  lazy(f"Refund of {{}}: {reason}", pay), staff=staff, payment=pay)
        pay.refunded += amount
        new = "refunded" if pay.refunded >= pay.amount else "partially_refunded"
        self.transition(pay, new, reason, staff=staff, details={"amount": money(amount)})
        self.note("refund", amount, reason, staff, payment=pay)
        self.apply_credit(staff)

    # the rails -------------------------------------------------------------------------------------

    def desk_payment(self, method: str, amount: Decimal, invoice, staff, location) -> PaymentRow:
        reference = ""
        if method == "bank":
            reference = f"EQ{self.rng.randrange(10**8):08d}"
        elif method == "cheque":
            reference = f"{self.rng.randrange(10**6):06d}"
        pay = self.payment(method, amount, invoice, staff=staff, location=location, reference=reference)
        label = DESK_LABELS[method]
        self.event(pay, "", "pending", f"{label} recorded at the desk", staff=staff, details={})
        self.complete(pay, f"{label} received", staff=staff)
        return pay

    def stk(self, amount: Decimal, invoice, failure: tuple | None = None, in_flight: str = "") -> PaymentRow:
        phone = self.member.phone
        pay = self.payment("mpesa", amount, invoice, staff=self.desk, location=self.desk_location, phone=phone)
        pay.expires_us = pay.us + self.gym.stk_timeout_seconds * SECOND
        self.event(pay, "", "pending", f"M-Pesa prompt requested for {display_phone(phone)}", staff=self.desk, details={})
        if in_flight == "pending":
            return pay
        self.later(2)
        checkout = self.h.checkout_id(self.clock, phone)
        pay.gateway_ref, pay.gateway_request = checkout, self.h.merchant_id()
        pay.next_check_us = self.clock + 15 * SECOND
        source = f"daraja:{checkout}"
        self.transition(pay, "processing", f"Prompt sent to {display_phone(phone)}", gateway_event=source)
        if in_flight == "processing":
            return pay
        self.later(self.rng.randint(12, 55))
        pay.next_check_us = None
        if failure is not None:
            _, status, reason, code = failure
            if code:
                self.transition(pay, status, reason, gateway_event=source,
                                details={"result_code": code, "result_desc": STK_DESCRIPTIONS[code]})
            else:
                self.later(self.gym.stk_timeout_seconds)
                self.transition(pay, status, reason)
            return pay
        pay.reference = self.h.mpesa_code(self.clock)
        self.complete(pay, "M-Pesa payment confirmed", gateway_event=source)
        return pay

    def c2b(self, amount: Decimal, invoice) -> PaymentRow:
        code = self.h.mpesa_code(self.clock)
        account = lazy("{}", invoice if invoice is not None else self.member)
        how = lazy("invoice {}", invoice) if invoice is not None else "member number"
        pay = self.payment("mpesa", amount, invoice, staff=None, location=None, reference=code, key=f"c2b:{code}",
                           note=_join("M-Pesa Paybill, account ", account), gateway_ref=code)
        source = f"daraja:{code}"
        masked = f"{self.member.phone[:4]} ***** {self.member.phone[-3:]}"
        local = datetime.fromtimestamp(self.clock / SECOND, self.gym.tz)
        self.event(pay, "", "pending", _join(f"M-Pesa Paybill payment {code} from {masked}, account ", account),
                   gateway_event=source,
                   details=({"matched_by": how, "trans_time": f"{local:%Y%m%d%H%M%S}", "short_code": self.gym.shortcode}))
        self.later(1)
        self.complete(pay, _join("M-Pesa Paybill payment received (matched by ", how, ")"), gateway_event=source)
        return pay

    def card(self, amount: Decimal, invoice, failure: tuple | None = None) -> PaymentRow:
        pay = self.payment("card", amount, invoice, staff=self.desk, location=self.desk_location,
                           gateway_request=self.h.tx_ref())
        self.event(pay, "", "pending", "Card checkout requested", staff=self.desk, details={})
        self.later(2)
        self.transition(pay, "processing", "Sent to Flutterwave's card page")
        self.later(self.rng.randint(60, 300))
        if failure is not None:
            status = failure[1]
            self.transition(pay, status, f"Card payment {status}", gateway_event=f"flutterwave:{pay.gateway_request}")
            return pay
        flw = self.h.flutterwave_id()
        source = f"flutterwave:{flw}"
        self.complete(pay, "Card payment confirmed by Flutterwave", gateway_event=source)
        # Flutterwave keeps its fee: card money held is what it settles (portal.payments.cards.checkout).
        fee = (pay.amount * CARD_FEE_RATE).quantize(CENT, rounding=ROUND_HALF_UP)
        if fee:
            self.post("gateway_fee", [("gateway_fees", None, None, fee), ("card", None, pay.location, -fee)],
                      f"Flutterwave fee on {pay.gateway_request}", payment=pay, gateway_event=source)
        pay.gateway_ref, pay.reference = str(flw), f"FLW {flw}"
        pay.card_brand = self.rng.choices([b for b, _ in CARD_BRANDS], [w for _, w in CARD_BRANDS])[0]
        pay.card_last4 = f"{self.rng.randrange(10**4):04d}"
        return pay

    def pay_with(self, rail: str, amount: Decimal, invoice) -> PaymentRow:
        if rail == "stk":
            return self.stk(amount, invoice)
        if rail == "c2b":
            return self.c2b(amount, invoice)
        if rail == "card":
            return self.card(amount, invoice)
        return self.desk_payment(rail, amount, invoice, self.desk, self.desk_location)

    def reversal(self, pay: PaymentRow, reason: str) -> None:
        """A manager asks Daraja to reverse a payment; the result comes back a minute later."""
        req = self._row(ReversalRow)
        req.payment, req.amount, req.reason, req.staff = pay, money(pay.amount), reason, self.gym.manager
        req.originator, req.conversation = self.h.request_id(), self.h.conversation_id(self.clock)
        self.later(self.rng.randint(30, 120))
        req.finished_us = self.clock
        self.reversals.append(req)
        self.refund(pay, pay.amount, f"M-Pesa reversal: {reason}", self.gym.manager)

    # a period: one invoice and how it was paid -------------------------------------------------------

    def pay_period(self, inv: InvoiceRow, period: Period) -> None:
        day = inv.issue_date + timedelta(days=period.offset)
        self.at(day, period.minute)
        chosen = inv if period.to_invoice else None
        for failure in period.failures:
            due = _whole(inv.total - inv.paid)
            if failure[0] == "stk":
                self.stk(due, chosen, failure)
            else:
                self.card(due, chosen, failure)
            self.later(self.rng.randint(60, 400))
        if period.outcome == "unpaid":
            return
        due = inv.total - inv.paid
        parts = _split(due, period.parts, self.rng, partial=period.outcome == "partial")
        rail = period.rail
        if period.extra.startswith("overpay"):
            rail = "cash"  # change the desk does not have: the rest waits as credit
        for i, amount in enumerate(parts):
            if i:
                day = day + timedelta(days=period.gaps[i - 1])
                self.at(day, self.rng.randint(6 * 60, 21 * 60))
            last = i == len(parts) - 1
            if last and period.extra.startswith("overpay"):
                excess = Decimal(self.rng.choice([100, 200, 500, 1000]))
                pay = self.pay_with(rail, amount + excess, chosen)
                if period.extra == "overpay_refund":
                    self._refund_later(pay, excess, day + timedelta(days=period.refund_after))
            else:
                self.pay_with(rail, amount, chosen)
        if period.extra == "duplicate":
            # Paid again by Paybill minutes later; the manager has it reversed.
            self.later(self.rng.randint(120, 1800))
            dup = self.c2b(parts[-1] if period.parts == 1 else due, None)
            refund_day = day + timedelta(days=period.refund_after)
            if refund_day <= self.gym.today:
                self.at(refund_day, self.rng.randint(9 * 60, 17 * 60))
                self.reversal(dup, "Paid twice (desk or STK and again by Paybill)")

    def _refund_later(self, pay: PaymentRow, amount: Decimal, day: date) -> None:
        if day > self.gym.today:
            return  # not yet: the member still holds it as credit
        self.at(day, self.rng.randint(9 * 60, 18 * 60))
        self.refund(pay, amount, "Overpaid at the desk: the difference returned in cash", self.gym.manager)

    # the whole story -----------------------------------------------------------------------------------

    def live(self, join: date, join_minute: int, periods: list[Period], fate: str, void_after: int | None) -> None:
        gym, plan = self.gym, self.plan
        self.member.status = "active"
        t = self.at(join, join_minute)
        self.member.us = t - self.rng.randint(2, 15) * MINUTE
        self.member.created_by = self.desk
        ms = self._row(MembershipRow)
        ms.member, ms.plan, ms.start, ms.end = self.member, plan, join, _membership_end(join, plan.months, plan.days)
        ms.status, ms.price, ms.created_by = "unpaid", plan.price, self.desk
        self.memberships.append(ms)
        self.later(20)
        inv = self.issue("new", ms, join, join, self.desk)
        to_come = list(itertools.accumulate(reversed([_period_days(p, plan, gym.renewal_days_before) for p in periods])))
        for i, period in enumerate(periods):
            self.still_to_come = to_come[len(periods) - 2 - i] if i < len(periods) - 1 else 0
            self.pay_period(inv, period)
            if period.outcome != "paid":
                break
            ms = self.current
            if self.h.extras:
                self.h.extras.maybe_freeze(self, ms, i)
            raise_on = ms.end - timedelta(days=gym.renewal_days_before)
            if raise_on > gym.today:
                if i < len(periods) - 1:
                    raise Future((raise_on - gym.today).days + self.still_to_come)
                inv = None
                break
            self.at(raise_on, 15)
            inv = self.issue("renewal", ms, ms.end + timedelta(days=1), ms.end, None)
        if inv is not None and inv.status == "open" and fate == "gone" and void_after is not None:
            void_on = inv.due_date + timedelta(days=void_after)
            if void_on <= gym.today:
                self.at(void_on, self.rng.randint(9 * 60, 17 * 60))
                reason = "Did not take up the membership" if inv.kind == "new" else "Member left the gym"
                self.void(inv, reason, gym.manager)
                self.member.status = "left" if inv.kind == "renewal" else "active"


def _period_days(period: Period, plan: PlanTerms, before: int) -> int:
    """Roughly how long a period takes on the calendar: the plan, plus the days a late payment
    pushes the next start back."""
    paid_late = period.offset + sum(period.gaps) - before - 1
    return round(plan.months * 30.44 + plan.days + max(0, paid_late))


def _days_to_last_payment(periods: list[Period], plan: PlanTerms, before: int) -> int:
    """Days from joining to the last payment, the way the renewal rules lay a history out."""
    length = plan.months * 30.44 + plan.days
    paying = [p for p in periods if p.payments]
    end = 0.0  # the current membership's last day, in days from joining
    for k, p in enumerate(paying):
        tried = p.offset + (sum(p.gaps) if p.outcome != "unpaid" else 0)
        if k == 0:
            if k == len(paying) - 1:
                return tried
            end = tried + length - 1
            continue
        issued = end - before
        if k == len(paying) - 1:
            return round(issued + tried)
        end += max(0, tried - before - 1) + length
    return 0


def _join(*parts) -> object:
    """Concatenate text where one part may name a document number not given out yet."""
    lazies = [p for p in parts if isinstance(p, tuple)]
    if not lazies:
        return "".join(parts)
    template, row = lazies[0]
    return ("".join(p if isinstance(p, str) else template for p in parts), row)


def _whole(amount: Decimal) -> Decimal:
    """M-Pesa takes whole shillings."""
    return amount.to_integral_value(rounding="ROUND_CEILING").quantize(CENT)


def _split(due: Decimal, parts: int, rng: random.Random, partial: bool) -> list[Decimal]:
    """`parts` payments of round amounts: adding up to `due`, or (partial) to less than it."""
    if partial:
        each = max(Decimal(1), (due * Decimal(rng.choice([20, 30, 40])) / 100 / parts // 100) * 100)
        if each * parts >= due:
            each = max(Decimal(1), (due - 1) // parts) if due > parts else Decimal("0.01")
        return [each.quantize(CENT)] * parts
    amounts = []
    left = due
    for i in range(parts - 1):
        share = (left * Decimal(rng.choice([30, 40, 50])) / 100 // 100) * 100
        share = min(max(share, Decimal(1)), left - (parts - 1 - i))
        amounts.append(share.quantize(CENT))
        left -= share
    amounts.append(left.quantize(CENT))
    return amounts


# --- the whole gym ----------------------------------------------------------------------------------

class History(Rows):
    """Every row of the simulated gym, in memory, and the numbering of them."""

    def __init__(self, gym: Gym, seed: int, extras=None):
        super().__init__()
        self.gym = gym
        # The demo.extras module (given by demo.bulk, which imports it: no cycle), for sales,
        # discounts, freezes and payers too; None: the plans' money only.
        self.extras = extras
        self.payers: list[PayerRow] = []
        self.payer_members: list[PayerMemberRow] = []
        self.promos: list[PromoRow] = []
        self.seed = seed
        self.rng = random.Random(seed)
        self.now_us = int(gym.now.timestamp() * SECOND)
        self._midnights: dict[date, int] = {}
        self.seq = itertools.count(1)
        self._codes = 0
        self._lines: dict[tuple, str] = {}
        self.members: list[MemberRow] = []
        self.visits: list = []  # check-ins, played after the money (demo.visits)

    # small helpers ---------------------------------------------------------------------------------

    def line(self, plan: PlanTerms, start: date, end: date) -> str:
        key = (plan.name, start, end)
        text = self._lines.get(key)
        if text is None:
            text = self._lines[key] = f"{plan.name} membership ({start:%d %b %Y} – {end:%d %b %Y})"
        return text

    def midnight(self, day: date) -> int:
        us = self._midnights.get(day)
        if us is None:
            us = self._midnights[day] = int(datetime.combine(day, time.min, self.gym.tz).timestamp()) * SECOND
        return us

    def local_day(self, us: int) -> date:
        return datetime.fromtimestamp(us / SECOND, self.gym.tz).date()

    def _next_code(self) -> int:
        self._codes += 1
        return self._codes

    def token(self) -> str:
        return f"{self.rng.getrandbits(96):024x}"

    def mpesa_code(self, us: int) -> str:
        """10 characters like Safaricom's (a letter for the year, one for the month, then 8),
        unique through a counter scrambled over 36^8."""
        local = datetime.fromtimestamp(us / SECOND, self.gym.tz)
        n = (self._next_code() * 2_654_435_761 + self.seed) % 36**8
        digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        body = "".join(digits[(n // 36**i) % 36] for i in range(8))
        return "QRSTUVWXYZ"[local.year % 10] + "ABCDEFGHIJKL"[local.month - 1] + body

    def checkout_id(self, us: int, phone: str) -> str:
        local = datetime.fromtimestamp(us / SECOND, self.gym.tz)
        return f"ws_CO_{local:%d%m%Y%H%M%S}{self._next_code() % 1000:03d}{phone[3:]}"

    def merchant_id(self) -> str:
        return f"{self.rng.getrandbits(16):04x}-{self.rng.getrandbits(16):04x}-{self._next_code():08d}"

    def request_id(self) -> str:
        return f"{self.rng.getrandbits(16):04x}-{self.rng.getrandbits(16):04x}-{self.rng.getrandbits(16):04x}-{self._next_code():012d}"

    def conversation_id(self, us: int) -> str:
        local = datetime.fromtimestamp(us / SECOND, self.gym.tz)
        return f"AG_{local:%Y%m%d}_{self._next_code():020x}"

    def tx_ref(self) -> str:
        return f"PTF-{self._next_code() * 2_654_435_761 % 16**16:016X}"

    def flutterwave_id(self) -> int:
        # Apart per seed: a load appended to another (demo-data --append, another seed) must not
        # reuse the first one's transaction ids.
        return 4_000_000 + self.seed * 10**9 + self._next_code()

    # building ------------------------------------------------------------------------------------------

    def simulate(self, members: int, payments: int, names: tuple[list[str], list[str]],
                 taken_phones: set[str] = frozenset(), progress=None) -> None:
        gym, rng = self.gym, self.rng
        # A few prompts are always waiting on someone's phone.
        in_flight = min(payments, max(1, min(10, payments // 10_000)))
        plans = [rng.choices(gym.plans, gym.plan_weights)[0] for _ in range(members)]
        extra = None
        if self.extras:
            extra = self.extras.Plan(self, members, payments - in_flight)
        budgets = _budgets(rng, plans, payments - in_flight - (extra.sales if extra else 0))
        firsts, lasts = names
        used_phones = set(taken_phones)
        for i in range(members):
            member = MemberRow()
            member.id = None
            member.seq = 0
            member.first, member.last = rng.choice(firsts), rng.choice(lasts)
            member.phone = demo_phone(rng, used_phones)
            member.email = rng.random() < 0.7  # the address is made once numbered: it carries the number
            member.location = rng.choices(gym.locations, gym.location_weights)[0]
            member.opt_out = rng.random() < 0.05
            member.status = "active"
            member.number = None
            self._setup = extra.member(i, member, used_phones) if extra else (None, None)
            self._live(member, plans[i], budgets[i], random.Random(rng.getrandbits(64)), used_phones)
            if progress:
                progress.advance(1)
        self._in_flight(in_flight)
        if extra:
            extra.after_lives()

    def _live(self, member: MemberRow, plan: PlanTerms, budget: int, rng: random.Random, used_phones: set[str]) -> None:
        gym = self.gym
        periods = _periods(rng, plan, budget)
        # Most members are paid up; some are late this period; about one in five has stopped coming.
        fate = "gone" if rng.random() < 0.2 else "here"
        if budget == 0:
            fate = "gone" if rng.random() < 0.3 else "here"
            target = gym.today - timedelta(days=rng.randint(0, 75 if fate == "gone" else 40))
        elif fate == "here" and rng.random() < 0.88:
            target = gym.today - timedelta(days=rng.randint(0, plan.days_long - 3))
        elif fate == "here":
            target = gym.today - timedelta(days=rng.randint(plan.days_long - 2, plan.days_long + 25))
        else:
            target = gym.today - timedelta(days=rng.randint(plan.days_long + 15, plan.days_long + 420))
        join_minute = rng.randint(7 * 60, 20 * 60)
        # Staff void the unpaid invoice of most of those who left, a few weeks after it fell due.
        void_after = rng.randint(20, 60) if rng.random() < 0.7 else None
        # Lay the story out, see where its last payment lands, and move it there.
        join = target - timedelta(days=_days_to_last_payment(periods, plan, gym.renewal_days_before))
        if self.extras:
            # Freezes drawn before the life is laid out, and the days they push its last payment
            # back allowed for: otherwise most frozen lives run into the future and are laid again.
            self._freezes = self.extras.freeze_plan(random.Random(rng.getrandbits(64)), plan, len(periods))
            paying = [k for k, p in enumerate(periods) if p.payments]
            join -= timedelta(days=sum(f[0] - f[3] for f in self._freezes[:paying[-1] if paying else 0] if f))
        state = rng.getstate()
        for _attempt in range(12):
            rng.setstate(state)
            life = Life(self, member, plan, rng)
            life.terms, life.payer = getattr(self, "_setup", (None, None))
            life.freeze_plan = getattr(self, "_freezes", None)
            try:
                life.live(join, join_minute, periods, fate, void_after)
            except Future as late:
                join -= timedelta(days=late.days)
                continue
            landed = life.last_payment_day if budget and life.last_payment_day else join
            if landed < target - timedelta(days=10) and _attempt < 2:
                join += target - landed
                continue
            break
        else:
            raise RuntimeError(f"could not lay out a history for member {member.first} {member.last}")
        # Some of those who never pay by M-Pesa are on Airtel, which has none: their number is in
        # no M-Pesa row yet, and the prompts still waiting (laid out last) pass them by, so one
        # member at least, the first, keeps Safaricom for those.
        if self.members and not any(pay.method == "mpesa" for pay in life.payments) and rng.random() < AIRTEL_SHARE:
            member.phone = demo_phone(rng, used_phones, "Airtel")
        self.members.append(member)
        self.take(life)
        if self.extras and any(e.kind in ("credit_held", "void", "discount_overpaid") for e in life.entries):
            self._credit_members = getattr(self, "_credit_members", set())
            self._credit_members.add(id(member))
        self._lives_with_open = getattr(self, "_lives_with_open", [])
        if life.open and life.open[-1].status in ("open", "partially_paid"):
            self._lives_with_open.append(life)

    def _in_flight(self, count: int) -> None:
        """M-Pesa prompts waiting on a phone right now (the sweeper will settle them)."""
        candidates = [life for life in getattr(self, "_lives_with_open", []) if _on_mpesa(life.member)]
        candidates = self.rng.sample(candidates, min(count, len(candidates)))
        for i in range(count):
            if i >= len(candidates):
                break
            life = candidates[i]
            inv = life.open[-1]
            life.clock = max(life.clock, self.now_us - self.rng.randint(10, 110) * SECOND)
            life.payments, life.events = [], []
            life.stk(_whole(inv.total - inv.paid), inv, in_flight="pending" if i % 3 == 0 else "processing")
            self.payments.extend(life.payments)
            self.events.extend(life.events)
        else:
            return
        # No open invoice anywhere (a tiny gym): prompts for no invoice, on anyone with M-Pesa.
        on_mpesa = [member for member in self.members if _on_mpesa(member)]
        for _ in range(count - i):
            member = on_mpesa[self.rng.randrange(len(on_mpesa))]
            life = Life(self, member, self.gym.plans[0], self.rng)
            life.clock = self.now_us - self.rng.randint(10, 110) * SECOND
            life.stk(_whole(self.gym.plans[0].total), None, in_flight="processing")
            self.payments.extend(life.payments)
            self.events.extend(life.events)

    # numbering ---------------------------------------------------------------------------------------------

    def ordered(self) -> None:
        """Rows in the order the app would have written them."""
        for name in ("members", *ROW_LISTS, "payers", "payer_members", "promos"):
            getattr(self, name).sort(key=_moment)

    def counts(self) -> dict[str, int]:
        return {"member": len(self.members), "membership": len(self.memberships), "invoice": len(self.invoices),
                "invoice_line": len(self.lines), "payment": len(self.payments),
                "payment_event": len(self.events), "ledger_entry": len(self.entries),
                "ledger_leg": sum(len(e.legs) for e in self.entries), "allocation": len(self.allocations),
                "credit_note": len(self.notes), "gateway_request": len(self.reversals), "visit": len(self.visits),
                **{table: len(getattr(self, name)) for table, name in EXTRA_TABLES.items()}}

    def numbers_needed(self) -> dict[tuple[str, int], int]:
        """How many INV/RCP/CRN numbers each year takes."""
        need: dict[tuple[str, int], int] = {}
        for inv in self.invoices:
            key = ("INV", inv.issue_date.year)
            need[key] = need.get(key, 0) + 1
        for pay in self.payments:
            if pay.receipt_year is not None:
                key = ("RCP", pay.receipt_year)
                need[key] = need.get(key, 0) + 1
        for note in self.notes:
            key = ("CRN", note.year)
            need[key] = need.get(key, 0) + 1
        return need

    def assign(self, first_id: dict[str, int], first_number: dict[tuple[str, int], int], first_member_number: int,
               prefix: str) -> None:
        """Ids from each table's reserved range, in time order; numbers likewise per year."""
        def number(rows, table):
            for i, row in enumerate(rows):
                row.id = first_id[table] + i

        number(self.members, "member")
        for i, m in enumerate(self.members):
            m.number = f"{prefix}{first_member_number + i:04d}"
            m.email = f"{m.first}.{m.last}.{m.number}@example.com".lower() if m.email else None
        number(self.memberships, "membership")
        number(self.invoices, "invoice")
        number(self.payments, "payment")
        number(self.events, "payment_event")
        number(self.entries, "ledger_entry")
        self.first_leg_id = first_id["ledger_leg"]
        number(self.allocations, "allocation")
        number(self.notes, "credit_note")
        number(self.reversals, "gateway_request")
        number(self.visits, "visit")
        number(self.lines, "invoice_line")
        for table, name in EXTRA_TABLES.items():
            number(getattr(self, name), table)
        counters = dict(first_number)
        for inv in self.invoices:
            key = ("INV", inv.issue_date.year)
            inv.number = f"INV-{key[1]}-{counters[key]:06d}"
            counters[key] += 1
        for pay in sorted((p for p in self.payments if p.completed_us is not None), key=lambda p: (p.completed_us, p.seq)):
            key = ("RCP", pay.receipt_year)
            pay.receipt_number = f"RCP-{key[1]}-{counters[key]:06d}"
            counters[key] += 1
        for note in self.notes:
            key = ("CRN", note.year)
            note.number = f"CRN-{key[1]}-{counters[key]:06d}"
            counters[key] += 1

    # rows for COPY ---------------------------------------------------------------------------------------------

    @staticmethod
    def when(us: int) -> datetime:
        return EPOCH + timedelta(microseconds=us)

    def rows(self, table: str, present: set[str] = frozenset()):
        """(columns, iterator of tuples) for one table, in id order. `present`: the table's
        columns, for those not every database has yet."""
        when = self.when
        if table == "member":
            return (["id", "member_number", "first_name", "last_name", "phone", "email", "status", "reminder_opt_out",
                     "home_location", "created_by", "created_at", "updated_at"],
                    ((m.id, m.number, m.first, m.last, m.phone, m.email, m.status, m.opt_out, m.location, m.created_by,
                      when(m.us), when(m.us)) for m in self.members))
        if table == "membership":
            return (["id", "member", "plan", "start_date", "end_date", "status", "price", "currency", "created_by",
                     "created_at"],
                    ((r.id, r.member.id, r.plan.id, r.start, r.end, _final_status(r, self.gym.today), r.price,
                      r.plan.currency, r.created_by, when(r.us)) for r in self.memberships))
        if table == "invoice":
            return (["id", "number", "member", "kind", "plan", "membership", "period_start", "issue_date", "due_date",
                     "currency", "subtotal", "tax_total", "total", "paid", "status", "void_reason", "created_by",
                     "created_at", "reminders_paused"],
                    ((r.id, r.number, r.member.id, r.kind, r.plan.id if r.plan else None,
                      r.membership.id if r.membership else None, r.period_start, r.issue_date, r.due_date,
                      self.gym.currency, r.subtotal, r.tax, r.total, r.paid, r.status, r.void_reason, r.created_by,
                      when(r.us), r.paused) for r in self.invoices))
        if table == "invoice_line":
            return (["id", "invoice", "description", "quantity", "unit_price", "vat_rate", "vat_inclusive", "net", "vat",
                     "total"],
                    ((r.id, r.invoice.id, r.description, r.quantity, r.unit_price, r.vat_rate, r.vat_inclusive, r.net,
                      r.vat, r.total) for r in self.lines))
        if table == "payment":
            return (["id", "member", "invoice", "method", "amount", "currency", "refunded", "status", "reference",
                     "receipt_number", "idempotency_key", "staff", "location", "note", "created_at", "completed_at",
                     "phone", "gateway_ref", "gateway_request", "expires_at", "next_check_at", "checks", "flag",
                     "card_brand", "card_last4"],
                    ((r.id, r.member.id, r.invoice.id if r.invoice else None, r.method, r.amount, self.gym.currency,
                      r.refunded, r.status, r.reference, r.receipt_number, r.key, r.staff, r.location, text(r.note),
                      when(r.us), when(r.completed_us) if r.completed_us else None, r.phone, r.gateway_ref,
                      r.gateway_request, when(r.expires_us) if r.expires_us else None,
                      when(r.next_check_us) if r.next_check_us else None, 0, "", r.card_brand, r.card_last4)
                     for r in self.payments))
        if table == "payment_event":
            return (["id", "payment", "at", "old_status", "new_status", "reason", "staff", "gateway_event", "details",
                     "kind"],
                    ((r.id, r.payment.id, when(r.us), r.old, r.new, text(r.reason), r.staff, r.gateway_event,
                      _details(r.details), r.kind) for r in self.events))
        if table == "ledger_entry":
            columns = ["id", "at", "kind", "memo", "staff", "invoice", "payment", "gateway_event"]
            rows = ((r.id, when(r.us), r.kind, text(r.memo), r.staff, r.invoice.id if r.invoice else None,
                     r.payment.id if r.payment else None, r.gateway_event) for r in self.entries)
            if "business_date" in present:
                # No day was closed in the simulated past: each entry counts toward its own day.
                local_day = self.local_day
                columns.append("business_date")
                rows = (row + (local_day(entry.us),) for row, entry in zip(rows, self.entries))
            return columns, rows
        if table == "ledger_leg":
            return (["id", "entry", "account", "member", "location", "amount", "currency"], self._legs(self.gym.currency))
        if table == "allocation":
            return (["id", "invoice", "payment", "amount", "entry", "at"],
                    ((r.id, r.invoice.id, r.payment.id if r.payment else None, r.amount, r.entry.id, when(r.us))
                     for r in self.allocations))
        if table == "credit_note":
            return (["id", "number", "kind", "member", "invoice", "payment", "amount", "currency", "reason", "staff",
                     "created_at"],
                    ((r.id, r.number, r.kind, r.member.id, r.invoice.id if r.invoice else None,
                      r.payment.id if r.payment else None, r.amount, self.gym.currency, r.reason, r.staff,
                      when(r.us)) for r in self.notes))
        if table == "gateway_request":
            return (["id", "gateway", "kind", "payment", "amount", "reason", "staff", "originator_conversation_id",
                     "conversation_id", "status", "result_code", "result_desc", "created_at", "finished_at"],
                    ((r.id, "daraja", "reversal", r.payment.id, r.amount, r.reason, r.staff, r.originator,
                      r.conversation, "succeeded", "0", "The service request is processed successfully.", when(r.us),
                      when(r.finished_us)) for r in self.reversals))
        if table == "visit":
            return (["id", "member", "staff", "location", "at", "colour", "outcome", "reason", "override_reason",
                     "overridden_by", "overridden_at"],
                    ((v.id, v.member.id, v.staff, v.location, when(v.us), v.colour, v.outcome, v.reason,
                      v.override_reason, v.overridden_by, when(v.overridden_us) if v.overridden_us else None)
                     for v in self.visits))
        if table in EXTRA_TABLES:
            return self.extras.rows(self, table) if self.extras else ([], iter(()))
        raise KeyError(table)

    def _legs(self, currency: str):
        leg_id = self.first_leg_id
        for entry in self.entries:
            for account, member, location, amount in entry.legs:
                yield (leg_id, entry.id, account, member.id if member else None, location, amount, currency)
                leg_id += 1


def _final_status(ms: MembershipRow, today: date) -> str:
    """What the nightly job has made of it by now."""
    if ms.status in ("unpaid", "cancelled"):
        return ms.status
    return status_on(ms.start, ms.end, today)


def _moment(row: Row) -> tuple[int, int]:
    return row.us, row.seq


def _details(details) -> str:
    if isinstance(details, tuple):  # a completed payment's settlement
        settled, left, owed, held = details
        return json.dumps({"settled": [{"invoice": inv.id, "number": inv.number, "amount": money(part)}
                                       for inv, part in settled],
                           "credit_added": money(left), "balance_owed": money(owed), "credit_balance": money(held)})
    if isinstance(details, dict) and any(isinstance(v, tuple) for v in details.values()):
        details = {k: text(v) for k, v in details.items()}
    return json.dumps(details or {})


def _on_mpesa(member: MemberRow) -> bool:
    return carrier_of(member.phone) == SAFARICOM


def _budgets(rng: random.Random, plans: list[PlanTerms], total: int, window_months: int = 30) -> list[int]:
    """Split `total` payments over members in proportion to how long each has been coming and
    how often their plan bills, none beyond what `window_months` of history holds (the gym's
    age; more than that is spread over the others). The sum is exact (largest remainder). A few
    just signed up and have paid nothing yet."""
    weights, caps = [], []
    for plan in plans:
        per_month = PAYMENTS_PER_INVOICE / max(plan.months + plan.days / 30, 0.25)
        caps.append(max(1, int(window_months * per_month)))
        weights.append(0.0 if rng.random() < 0.03 else rng.uniform(1, 30) * per_month)
    if not total or not any(weights):
        return [0] * len(plans)
    room = sum(cap for cap, w in zip(caps, weights) if w)
    if total > room:  # more payments than the window holds: stretch it
        caps = [int(cap * total / room) + 1 for cap in caps]
    # Water-filling: the scale at which the capped shares add up to `total`.
    low, high = 0.0, total / min(w for w in weights if w)
    for _ in range(60):
        scale = (low + high) / 2
        if sum(min(w * scale, cap) for w, cap in zip(weights, caps)) < total:
            low = scale
        else:
            high = scale
    shares = [min(w * high, cap) for w, cap in zip(weights, caps)]
    budgets = [int(share) for share in shares]
    short = total - sum(budgets)
    order = sorted((i for i in range(len(plans)) if weights[i]), key=lambda i: shares[i] - budgets[i], reverse=True)
    for i in itertools.islice(itertools.cycle(order), short):
        budgets[i] += 1
    return budgets


def _failure(rng: random.Random, rail: str) -> tuple:
    if rail == "card" or (rail != "stk" and rng.random() < 0.15):
        return ("card", rng.choices(["cancelled", "failed"], [6, 4])[0])
    _, status, reason, code = rng.choices(STK_FAILURES, [f[0] for f in STK_FAILURES])[0]
    return ("stk", status, reason, code)


def _period(rng: random.Random, preferred: str, kind_new: bool) -> Period:
    rail = preferred if rng.random() < 0.75 else rng.choices(RAILS, RAIL_WEIGHTS)[0]
    if kind_new:
        offset = 0 if rng.random() < 0.85 else rng.randint(1, 10)
    else:
        offset = rng.choices([rng.randint(0, 7), rng.randint(8, 20), rng.randint(21, 45)], [76, 19, 5])[0]
    minute = rng.randint(7 * 60, 20 * 60 + 30) if rail in DESK_LABELS else rng.randint(6 * 60, 22 * 60 + 30)
    # STK prompts often go unanswered or are cancelled; cash payers sometimes tried M-Pesa first.
    tries = rng.choices([0, 1, 2], [70, 22, 8])[0] if rail in ("stk", "card") else (1 if rng.random() < 0.06 else 0)
    failures = [_failure(rng, rail) for _ in range(tries)]
    parts = 1 if rail in ("bank", "cheque", "card") else rng.choices([1, 2, 3], [72, 22, 6])[0]
    gaps = [rng.randint(2, 14) for _ in range(parts - 1)]
    roll = rng.random()
    extra = ""
    if roll < 0.012:
        extra = "duplicate"
    elif roll < 0.035 and parts == 1:
        extra = "overpay_refund" if rng.random() < 0.4 else "overpay"
    return Period(offset, minute, rail, failures, parts, gaps, extra, "paid", rng.random() < 0.7, rng.randint(1, 3))


def _periods(rng: random.Random, plan: PlanTerms, budget: int) -> list[Period]:
    """Periods spending exactly `budget` payments; the last is how the member stands now."""
    preferred = rng.choices(RAILS, RAIL_WEIGHTS)[0]
    periods: list[Period] = []
    left = budget
    while True:
        period = _period(rng, preferred, kind_new=not periods)
        if period.payments < left:
            periods.append(period)
            left -= period.payments
            continue
        # The last invoice: paid, part paid or not yet, with exactly what is left.
        period.extra = "" if period.extra != "duplicate" or left < 2 else period.extra
        if left == 0:
            period.failures, period.outcome, period.extra = [], "unpaid", ""
        else:
            roll = rng.random()
            if left <= 2 and roll < 0.04:
                period.failures, period.outcome, period.extra = [_failure(rng, "stk") for _ in range(left)], "unpaid", ""
            elif left <= 3 and roll < 0.12 and period.rail not in ("bank", "cheque", "card"):
                period.failures, period.parts, period.outcome, period.extra = [], left, "partial", ""
            else:
                spare = left - (period.extra == "duplicate")
                period.parts = min(3, max(1, spare - 2)) if period.rail not in ("bank", "cheque", "card") else 1
                period.failures = [_failure(rng, period.rail) for _ in range(spare - period.parts)]
                period.outcome = "paid"
            period.gaps = [rng.randint(2, 14) for _ in range(max(period.parts - 1, 0))]
        assert period.payments == left, (period, left)
        periods.append(period)
        return periods
