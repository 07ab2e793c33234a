"""Issue 14's money in the bulk demo (demo.history, demo.bulk): desk sales, discounts and promo
codes, freezes, and payers (parents and companies) with invoices addressed to them; simulated
with the rules the app applies one request at a time, and written with COPY like the rest.

The rules replayed (each with the rows and ledger entries the app writes):

- a desk sale (portal.sales.sales.sell): an invoice of kind `other`, one line per catalogue item,
  issued and due the day it is sold, posted receivable / each item's revenue account + VAT; paid
  at once at the desk (cash with what was tendered and the change, bank, cheque) through the
  payment state machine; a `sale` row, a `sale_line` per line, a `session_pack` for a PT pack and
  its sessions used visit by visit (`session_use`). Walk-ins go on the gym's one walk-in account
  (portal.sales.walkin), with their first name on the sale now and then;
- a discount (portal.billing.discounts): a percentage or an amount off one line or the whole
  invoice, with a reason; once approved a negative invoice line and its own ledger entry (debit
  discounts with the net, debit vat_payable with the VAT in it, credit the member's receivable),
  the invoice's totals less it. The front desk gives up to its limit, a manager above it; promo
  codes were approved by the manager who made them. Some wait in the approval queue (their
  invoice's reminders paused), some were rejected (no trace in the books);
- a freeze (portal.members.changes.freeze): a paid membership paused between two dates, its end
  moved later by the frozen days (so the renewal invoice comes that much later), a few ended early
  (the end moved back); nobody checks in while frozen (demo.visits);
- payers (portal.payers): a parent for a family, a company for some of its staff (name, postal
  address, KRA PIN); the members are linked from the day they join, so every invoice they get is
  addressed to the payer (`invoice_bill_to`, the payer as it was at issue). Company staff have the
  corporate rate on their plan: a line discount a manager gives.

Proportions, and why (a Nairobi gym of the kind the portal is for):

- sales: SALE_SHARE (8%) of the payments asked for are desk sales (each one payment): day passes
  and water to walk-ins, PT, lockers and shakes to members. Taken out of the plan payments, so
  `--payments N` stays exact. 45% are walk-ins (drop-in day passes are common in Nairobi gyms),
  as in the small demo (demo.sales); spread evenly over the last 18 months (about 75 a
  day at 20,000 members, across the branches).
- discounts: students (STUDENT_SHARE, 6% of members) get 10% off every plan invoice (within the
  desk's default limit: the desk gives it); company staff 15% (a manager); new members
  PROMO_SHARE (5%) use a promo code on their first invoice; 1% of renewals get a goodwill
  amount off (a manager); about 0.4% of invoices have a discount asked for and rejected, and
  one member in 2,000 one waiting in the queue now (a
  manager works the queue daily: it holds the last days' asks, about ten at 20,000 members). About one plan invoice in ten is discounted,
  what owners of gyms like this report giving.
- freezes: per paid membership, 1.5% of monthly, 6% of quarterly and 12% of annual ones are
  frozen 7 to 30 days (longer plans are the ones people pause for travel or injury); 15% of the
  freezes over by now were ended early.
- payers: 4% of members in families of 2 to 4 under a parent, 3% on a company's account in
  groups of 3 to 12.

Left out: sales put on a member's account (an open invoice a later Paybill payment would settle
first: it would reorder the member's whole history), payments made by a payer for several
members at once (members pay their own invoices here, which the app allows), freeze fees, and
the audit log (as for the rest of the bulk history). Member sales go to members who never held
credit, which the app would have applied to the sale first.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from demo.gym import FIRST_NAMES, MEMBER_BASKETS, TIME_WEIGHTS, TIMES, WALKIN_BASKETS, demo_phone
from demo.history import (
    DAY,
    DESK_LABELS,
    MINUTE,
    SECOND,
    BillToRow,
    DiscountRow,
    Future,
    History,
    InvoiceRow,
    Life,
    MemberRow,
    MembershipRow,
    PackRow,
    PayerMemberRow,
    PayerRow,
    PromoRow,
    SaleLineRow,
    SaleRow,
    UseRow,
    lazy,
)
from portal.billing.discounts import PAUSED, vat_split
from portal.billing.invoices import Line
from portal.lib.money import CENT, Money

SALE_SHARE = 0.08
WALKIN_SHARE = 0.45
# Spread evenly over the last 18 months (the small demo's 60% in the last 60 days is for a few
# hundred sales: 40,000 of them at 20,000 members would put 400 a day on the desk and 12,000 on
# the analytics' last 30 days, more than the plans' own invoices).
SALE_DAYS, RECENT_DAYS = 540, 60
RECENT_SHARE = RECENT_DAYS / SALE_DAYS
STUDENT_SHARE, STUDENT_RATE = 0.06, Decimal(10)
CORPORATE_RATE = Decimal(15)
PROMO_SHARE = 0.05
GOODWILL_SHARE = 0.01
REJECTED_SHARE = 0.004
PENDING_SHARE = 0.0005  # waiting in the approval queue now: a manager works it daily
FAMILY_SHARE, FAMILY_SIZES = 0.04, (2, 4)
COMPANY_SHARE, COMPANY_SIZES = 0.03, (3, 12)
FREEZE_CHANCE = {12: 0.12, 3: 0.06}  # by the plan's months (at least); monthly and shorter: FREEZE_MONTHLY
FREEZE_MONTHLY = 0.015
FREEZE_DAYS = (7, 30)
FREEZE_ENDED_EARLY = 0.15
FREEZE_REASONS = ["Travelling upcountry for work", "Knee injury: the physio says two to three weeks off",
                  "University exams", "Out of the country for a family wedding", "Recovering from malaria",
                  "Work posting to Mombasa for a month"]
GOODWILL = ([Decimal(300), Decimal(500), Decimal(1000)],
            ["Goodwill: the showers were out of order for a week", "Goodwill: the gym closed for repairs",
             "Goodwill: billed before the plan change was agreed"])
REJECTED_REASONS = ["Asked for half off: says a friend got the same", "Asked to waive the month: travelled and did not come"]
PENDING_REASONS = ["Hardship: lost their job, asks for 30% off this period", "Long-time member asks for a loyalty rate"]

COMPANIES = (["Nyota", "Baraka", "Upendo", "Tumaini", "Jamii", "Savanna", "Kilima", "Mto", "Simba", "Twiga", "Jua",
              "Amani"],
             ["Logistics Ltd", "Holdings Ltd", "Insurance Agency Ltd", "Engineering Ltd", "Pharmaceuticals Ltd",
              "Consulting LLP", "Staff SACCO", "Freight Ltd", "Technologies Ltd"])
STREETS = ["Moi Avenue", "Kenyatta Avenue", "Ngong Road", "Waiyaki Way", "Mombasa Road", "Kimathi Street"]


def _row(history: History, cls, us: int):
    row = cls()
    row.id, row.us, row.seq = None, us, next(history.seq)
    return row


def _kra_pin(rng: random.Random) -> str:
    return f"P{rng.randrange(10**9):09d}{chr(65 + rng.randrange(26))}"


class Plan:
    """The gym-wide choices: who is a student, who pays for whom, the promo codes, how many sales."""

    def __init__(self, history: History, members: int, payments: int):
        self.h, gym = history, history.gym
        self.rng = rng = random.Random(history.seed * 7907 + 3)
        self.sales = round(payments * SALE_SHARE) if gym.items and gym.walkin else 0
        self.payer_of: dict[int, PayerRow] = {}
        order = list(range(members))
        rng.shuffle(order)
        at = 0
        for share, (lo, hi), kind in ((COMPANY_SHARE, COMPANY_SIZES, "company"), (FAMILY_SHARE, FAMILY_SIZES, "person")):
            left = round(members * share)
            while left >= lo and at + lo <= members:
                size = min(rng.randint(lo, hi), left, members - at)
                payer = PayerRow()
                payer.id, payer.us, payer.seq, payer.kind, payer.members = None, 0, 0, kind, []
                payer.created_by = gym.manager
                if kind == "company":
                    payer.name = f"{rng.choice(COMPANIES[0])} {rng.choice(COMPANIES[1])}"
                    payer.phone, payer.kra_pin = "", _kra_pin(rng)
                    slug = payer.name.split()[0].lower()
                    payer.email = f"accounts@{slug}{len(history.payers) + 1}.example.com"
                    payer.address = f"P.O. Box {rng.randint(1000, 99999)}-00100, {rng.choice(STREETS)}, Nairobi"
                else:
                    payer.name, payer.kra_pin = rng.choice(FIRST_NAMES), ""  # the family name comes with the first member
                    payer.phone, payer.email = "", ""
                    payer.address = f"P.O. Box {rng.randint(1000, 99999)}-00200, Nairobi"
                history.payers.append(payer)
                for i in order[at:at + size]:
                    self.payer_of[i] = payer
                at += size
                left -= size
        self.students = {i for i in order[at:] if rng.random() < STUDENT_SHARE}
        history.promos = self._promos()

    def _promos(self) -> list[PromoRow]:
        h, gym = self.h, self.h.gym
        today = gym.today
        codes = [("KARIBU", Decimal(10), "10% off a new member's first invoice", today - timedelta(days=1100),
                  today + timedelta(days=90))]
        for year in range(today.year - 3, today.year + 1):
            if date(year, 1, 1) <= today:
                codes.append((f"NEWYEAR{year % 100:02d}", Decimal(20), "New year: 20% off joining in January",
                              date(year, 1, 1), date(year, 1, 31)))
        promos, self.promos = [], []
        for code, value, description, start, end in codes:
            made = max(start - timedelta(days=3), today - timedelta(days=1200))
            row = _row(h, PromoRow, h.midnight(made) + 10 * 60 * MINUTE)
            row.code, row.kind, row.value, row.description = code, "percent", value, description
            row.valid_from, row.valid_to, row.max_uses, row.max_per_member = start, end, None, 1
            row.created_by = gym.manager
            kept = gym.promos.get(code)
            if kept is not None:  # an earlier load made it (demo-data --force-append): use that one
                row.id, row.kind, row.value = kept["id"], kept["kind"], kept["value"]
                row.valid_from, row.valid_to, row.created_by = kept["valid_from"], kept["valid_to"], kept["created_by"]
                row.us = int(kept["created_at"].timestamp()) * SECOND
            else:
                promos.append(row)
            self.promos.append(row)
        h.usable_promos = self.promos
        return promos

    def member(self, i: int, member: MemberRow, used_phones: set[str]):
        """(terms, payer) for the i-th member, who is dressed for it (a family shares a name)."""
        payer = self.payer_of.get(i)
        if payer is not None:
            if payer.kind == "person":
                if not payer.members:
                    payer.name = f"{payer.name} {member.last}"
                    payer.phone = demo_phone(self.rng, used_phones)
                    payer.email = f"{payer.name.replace(' ', '.').lower()}@example.com"
                else:
                    member.last = payer.name.split()[-1]
            payer.members.append(member)
            if payer.kind == "company":
                return ("percent", CORPORATE_RATE, f"Corporate rate: {payer.name}"), payer
            return None, payer
        if i in self.students:
            return ("percent", STUDENT_RATE, "Student rate (student ID seen)"), None
        return None, None

    def after_lives(self) -> None:
        h = self.h
        for payer in h.payers:
            if not payer.members:
                continue
            first = min(m.us for m in payer.members)
            payer.us = first - self.rng.randint(1, 3 * 24 * 60) * MINUTE
            for m in payer.members:
                link = _row(h, PayerMemberRow, m.us + SECOND)
                link.payer, link.member, link.linked_by = payer, m, m.created_by
                h.payer_members.append(link)
        h.payers = [p for p in h.payers if p.members]
        self._pending()
        if self.sales:
            Sales(self).make(self.sales)

    def _pending(self) -> None:
        """Discounts asked for lately, above the desk's limit, waiting in the approval queue."""
        h, rng = self.h, self.rng
        lives = [life for life in getattr(h, "_lives_with_open", []) if life.open]
        wanted = min(len(lives), max(1, round(len(h.members) * PENDING_SHARE))) if lives else 0
        for life in rng.sample(lives, wanted):
            inv = life.open[-1]
            us = max(inv.us + MINUTE, h.now_us - rng.randint(2 * 60, 6 * 24 * 60) * MINUTE)
            if us >= h.now_us - MINUTE:
                continue
            line = inv.lines[0]
            amount = (line.total * Decimal(30) / 100).quantize(CENT, rounding=ROUND_HALF_UP)
            net, vat = _split(amount, [line])
            row = _row(h, DiscountRow, us)
            _fill(row, inv, line, "percent", Decimal(30), amount, net, vat, rng.choice(PENDING_REASONS), None,
                  "pending", life.desk, None, None)
            h.discounts.append(row)
            inv.paused = PAUSED


def _split(amount: Decimal, lines) -> tuple[Decimal, Decimal]:
    net, vat = vat_split(Money(amount), [{"total": line.total, "vat_rate": line.vat_rate} for line in lines])
    return net.amount, vat.amount


def _fill(row: DiscountRow, inv: InvoiceRow, line, kind, value, amount, net, vat, reason, promo, status, requested,
          approved, decided_us) -> None:
    row.invoice, row.member, row.line, row.discount_line = inv, inv.member, line, None
    row.kind, row.value, row.amount, row.net, row.vat, row.reason = kind, value, amount, net, vat, reason
    row.promo, row.status, row.requested_by, row.approved_by = promo, status, requested, approved
    row.decided_us, row.note, row.entry = decided_us, "", None


# --- discounts (portal.billing.discounts.give / _post) ----------------------------------------------

def discount(life: Life, inv: InvoiceRow, kind: str, value: Decimal, reason: str, line, *, requested_by: int,
             approved_by: int, promo: PromoRow | None = None) -> DiscountRow:
    """An approved discount: its negative line, its ledger entry, the invoice's totals less it.
    `line` None: the whole invoice."""
    targets = [line] if line is not None else [t for t in inv.lines if t.total > 0]
    base = sum(t.total for t in targets)
    amount = (base * value / 100).quantize(CENT, rounding=ROUND_HALF_UP) if kind == "percent" else value
    net, vat = _split(amount, targets)
    row = life._row(DiscountRow)
    _fill(row, inv, line, kind, value, amount, net, vat, reason, promo, "approved", requested_by, approved_by, life.clock)
    label = f"{value.normalize():f}% " if kind == "percent" else ""
    text = (f"Discount {label}on {line.description}: " if line is not None else f"Discount {label}: ").replace(" :", ":")
    rates = {t.vat_rate for t in targets}
    rate = rates.pop() if len(rates) == 1 else Decimal(0)
    row.discount_line = life.line_row(inv, (text + reason)[:200], 1, -amount, rate, True, -net, -vat, -amount)
    row.entry = life.post("discount", [("discounts", None, None, net), ("vat_payable", None, None, vat),
                                       ("receivable", life.member, None, -amount)],
                          lazy(f"Discount on {{}}: {reason}", inv), staff=approved_by, invoice=inv)
    inv.total -= amount
    inv.subtotal -= net
    inv.tax -= vat
    life.discounts.append(row)
    return row


def on_plan_invoice(life: Life, inv: InvoiceRow) -> None:
    """A plan invoice just issued: addressed to the member's payer; the member's rate, a promo code
    or a goodwill amount off it; now and then a discount asked for and refused."""
    h, gym, rng = life.h, life.gym, life.rng
    if life.payer is not None:
        bill = life._row(BillToRow)
        bill.invoice, bill.payer = inv, life.payer
        life.bill_tos.append(bill)
    if inv.paid:
        return  # credit already settled some of it: a discount now would be paid beyond (left out)
    roll = rng.random()
    if life.terms is not None:
        kind, value, reason = life.terms
        life.later(rng.randint(20, 120))
        approver = life.desk if value <= STUDENT_RATE else gym.manager
        discount(life, inv, kind, value, reason, inv.lines[0], requested_by=life.desk, approved_by=approver)
    elif inv.kind == "new" and roll < PROMO_SHARE:
        # The month's own code first (NEWYEAR26 in January), else the standing welcome code.
        promo = next((p for p in sorted(h.usable_promos, key=lambda p: p.valid_to - p.valid_from)
                      if p.valid_from <= inv.issue_date <= p.valid_to and p.us < life.clock), None)
        if promo is not None:
            life.later(rng.randint(20, 120))
            discount(life, inv, promo.kind, promo.value, f"Promo code {promo.code}", inv.lines[0],
                     requested_by=life.desk, approved_by=promo.created_by, promo=promo)
    elif inv.kind == "renewal" and roll < GOODWILL_SHARE:
        life.later(rng.randint(20, 120))
        discount(life, inv, "amount", rng.choice(GOODWILL[0]), rng.choice(GOODWILL[1]), None,
                 requested_by=gym.manager, approved_by=gym.manager)
    elif roll > 1 - REJECTED_SHARE:
        line = inv.lines[0]
        amount = (line.total / 2).quantize(CENT, rounding=ROUND_HALF_UP)
        net, vat = _split(amount, [line])
        row = life._row(DiscountRow)
        decided = min(life.clock + rng.randint(1, 48) * 60 * MINUTE, h.now_us - MINUTE)
        _fill(row, inv, line, "percent", Decimal(50), amount, net, vat, rng.choice(REJECTED_REASONS), None,
              "rejected", life.desk, gym.manager, decided)
        row.note = "Above what we give: offered the student rate if eligible"
        life.discounts.append(row)


# --- freezes (portal.members.changes.freeze) ----------------------------------------------------------

def freeze_plan(rng: random.Random, plan, periods: int) -> list[tuple | None]:
    """For each period of a life, the freeze of the membership it pays for, if any: (days,
    notice, where in the membership it starts (0..1), days ended early)."""
    chance = next((c for m, c in sorted(FREEZE_CHANCE.items(), reverse=True) if plan.months >= m), FREEZE_MONTHLY)
    drawn = []
    for _ in range(periods):
        if rng.random() >= chance:
            drawn.append(None)
            continue
        days = rng.randint(*FREEZE_DAYS)
        cut = rng.randint(1, days - FREEZE_DAYS[0] + 1) if rng.random() < FREEZE_ENDED_EARLY else 0
        drawn.append((days, rng.choice([0, 0, 1, 2, 3, 7]), rng.random(), cut))
    return drawn


def maybe_freeze(life: Life, ms: MembershipRow, period: int) -> None:
    """The membership period `period` paid for is frozen if the life's freeze plan says so (asked
    for before the renewal invoice is due)."""
    from demo.history import FreezeRow

    gym, rng = life.gym, life.rng
    planned = life.freeze_plan[period] if life.freeze_plan and period < len(life.freeze_plan) else None
    if planned is None:
        return
    days, notice, offset, cut = planned
    earliest = max(ms.start + timedelta(days=2), life.day())
    latest = ms.end - timedelta(days=gym.renewal_days_before + 1)
    if latest < earliest:
        return
    start = earliest + timedelta(days=int(offset * (latest - earliest).days))
    asked = max(start - timedelta(days=notice), life.day())
    if asked > gym.today:
        return
    life.at(asked, rng.randint(9 * 60, 18 * 60))
    row = life._row(FreezeRow)
    row.membership, row.member, row.start, row.reason = ms, life.member, start, rng.choice(FREEZE_REASONS)
    row.created_by, row.ended_reason, row.ended_by, row.ended_us = gym.manager, "", None, None
    end = start + timedelta(days=days - 1)
    ms.end += timedelta(days=days)
    if cut and end - timedelta(days=cut) + 2 * DAY <= gym.today:
        end -= timedelta(days=cut)
        ms.end -= timedelta(days=cut)
        row.ended_reason, row.ended_by = "Back earlier than planned", gym.manager
        row.ended_us = life.h.midnight(end + DAY) + rng.randint(8 * 60, 12 * 60) * MINUTE
    row.end, row.days = end, (end - start).days + 1
    life.freezes.append(row)


# --- desk sales (portal.sales.sales.sell) --------------------------------------------------------------

class Sales:
    def __init__(self, plan: Plan):
        self.plan, self.h = plan, plan.h
        self.rng = random.Random(self.h.seed * 15485863 + 11)
        self.items = self.h.gym.items
        self.priced: dict[tuple[int, int], tuple[Decimal, Decimal, Decimal]] = {}

    def amounts(self, item: dict, qty: int) -> tuple[Decimal, Decimal, Decimal]:
        key = (item["id"], qty)
        if key not in self.priced:
            net, vat, total = Line(item["name"], Money(item["price"], item["currency"]), qty, item["vat_rate"],
                                   item["vat_inclusive"], item["revenue_account"]).amounts()
            self.priced[key] = (net.amount, vat.amount, total.amount)
        return self.priced[key]

    def make(self, count: int) -> None:
        h, gym, rng = self.h, self.h.gym, self.rng
        today = gym.today
        first_join = min((h.local_day(m.us) for m in h.members), default=today)
        lo = max(first_join, today - timedelta(days=SALE_DAYS - 1))
        recent_lo = max(lo, today - timedelta(days=RECENT_DAYS - 1))
        credit = getattr(h, "_credit_members", set())
        paid = [ms for ms in h.memberships if ms.status not in ("unpaid", "cancelled")
                and id(ms.member) not in credit and ms.start <= today and ms.end >= lo]
        recent = [ms for ms in paid if ms.end >= recent_lo]
        frozen: dict[int, list[tuple[date, date]]] = {}
        for f in h.freezes:
            frozen.setdefault(id(f.member), []).append((f.start, f.end))
        walkin = MemberRow()
        walkin.id, walkin.us, walkin.seq, walkin.number, walkin.phone = gym.walkin, 0, 0, "WALKIN", ""
        for i in range(count):
            is_recent = rng.random() < RECENT_SHARE
            member, day = None, None
            if rng.random() >= WALKIN_SHARE:
                pool = recent if is_recent and recent else paid
                if pool:
                    ms = pool[rng.randrange(len(pool))]
                    first = max(ms.start, recent_lo if is_recent else lo)
                    last = min(ms.end, today)
                    if first <= last:
                        day = first + timedelta(days=rng.randint(0, (last - first).days))
                        if not any(a <= day <= b for a, b in frozen.get(id(ms.member), ())):
                            member = ms.member
            if member is None:
                a, b = (recent_lo, today) if is_recent else (lo, max(lo, recent_lo - DAY))
                day = a + timedelta(days=rng.randint(0, (b - a).days))
                walkin.location = rng.choices(gym.locations, gym.location_weights)[0]
            self.sell(i, member or walkin, member is None, day)

    def sell(self, i: int, who: MemberRow, walk_in: bool, day: date) -> None:
        h, gym, rng = self.h, self.h.gym, self.rng
        life = Life(h, who, gym.plans[0], rng)
        start, end = rng.choices(TIMES, TIME_WEIGHTS)[0]
        minute = rng.randint(start, end)
        for _ in range(3):
            try:
                life.at(day, minute, rng.randint(0, 59))
                break
            except Future:
                day -= DAY
        if not walk_in and life.clock <= who.us:  # not before they joined, on the day they did
            life.clock = min(who.us + 5 * MINUTE, h.now_us - 2 * MINUTE)
        basket = rng.choices(*zip(*(WALKIN_BASKETS if walk_in else MEMBER_BASKETS)))[0]
        chosen = [(self.items[name], qty) for name, qty in basket.items() if name in self.items]
        if not chosen:  # a catalogue without these names: any simple item
            simple = [item for item in self.items.values() if item["kind"] == "simple"]
            chosen = [(simple[rng.randrange(len(simple))], 1)]
        method = rng.choices(["cash", "bank", "cheque"], [78, 17, 5] if not walk_in else [85, 15, 0])[0]

        inv = life._row(InvoiceRow)
        inv.member, inv.kind, inv.plan, inv.membership, inv.period_start = who, "other", None, None, None
        inv.issue_date = inv.due_date = life.day()
        inv.paid, inv.status, inv.void_reason, inv.created_by, inv.number = Decimal(0), "open", "", life.desk, None
        inv.line, inv.paused, inv.lines = "", "", []
        by_account: dict[str, Decimal] = {}
        subtotal = tax = total = Decimal(0)
        sale = life._row(SaleRow)
        for item, qty in chosen:
            net, vat, tot = self.amounts(item, qty)
            line = life.line_row(inv, item["name"], qty, item["price"], item["vat_rate"], item["vat_inclusive"], net,
                                 vat, tot)
            inv.lines.append(line)
            sl = life._row(SaleLineRow)
            sl.sale, sl.line, sl.item = sale, line, item
            life.sale_lines.append(sl)
            by_account[item["revenue_account"]] = by_account.get(item["revenue_account"], Decimal(0)) + net
            subtotal, tax, total = subtotal + net, tax + vat, total + tot
        inv.subtotal, inv.tax, inv.total = subtotal, tax, total
        life.invoices.append(inv)
        life.open.append(inv)
        life.post("invoice_issued", [("receivable", who, None, total),
                                     *[(account, None, None, -net) for account, net in by_account.items()],
                                     ("vat_payable", None, None, -tax)],
                  lazy("Invoice {}", inv), staff=life.desk, invoice=inv)
        life.later(rng.randint(20, 90))
        reference = {"bank": f"FT{rng.randint(10**9, 10**10 - 1)}", "cheque": f"{rng.randint(100000, 999999)}"}.get(method, "")
        key = f"demo-sale:{h.seed}:{i}"
        label = DESK_LABELS[method]
        pay = life.payment(method, total, inv, staff=life.desk, location=life.desk_location, reference=reference,
                           key=f"sale:{key}", note=lazy("Sale {}", inv))
        life.event(pay, "", "pending", f"{label} for a sale at the desk", staff=life.desk, details={})
        life.complete(pay, f"{label} received for a sale", staff=life.desk)
        tendered = change = None
        if method == "cash":
            note = rng.choice([0, 0, 500, 1000])
            tendered = total if not note else ((total // note) + 1) * note
            change = tendered - total
        sale.invoice, sale.member, sale.method, sale.payment = inv, None if walk_in else who, method, pay
        sale.buyer_name = rng.choice(FIRST_NAMES) if walk_in and rng.random() < 0.3 else ""
        sale.tendered, sale.change, sale.key, sale.staff, sale.location = tendered, change, key, life.desk, life.desk_location
        sale.us = life.clock
        life.sales.append(sale)
        for item, qty in chosen:
            if item["kind"] == "pack":
                self.pack(life, sale, who, item, qty)
        h.take(life)

    def pack(self, life: Life, sale: SaleRow, member: MemberRow, item: dict, qty: int) -> None:
        h, rng = self.h, self.rng
        pack = life._row(PackRow)
        pack.member, pack.item, pack.sale, pack.sessions, pack.used = member, item, sale, item["sessions"] * qty, 0
        life.packs.append(pack)
        at = life.clock
        for _ in range(pack.sessions):
            at += rng.randint(2, 5) * 24 * 60 * MINUTE + rng.randint(-90, 90) * MINUTE
            if at > h.now_us - 5 * MINUTE or rng.random() < 0.05:
                break
            use = _row(h, UseRow, at)
            use.pack, use.staff = pack, life.desk
            life.uses.append(use)
            pack.used += 1


# --- rows for COPY ----------------------------------------------------------------------------------

def rows(h: History, table: str):
    when, cur = h.when, h.gym.currency
    ids = lambda r: r.id if r is not None else None  # noqa: E731
    if table == "payer":
        return (["id", "kind", "name", "phone", "email", "address", "kra_pin", "created_by", "created_at"],
                ((r.id, r.kind, r.name, r.phone, r.email, r.address, r.kra_pin, r.created_by, when(r.us))
                 for r in h.payers))
    if table == "payer_member":
        return (["id", "payer", "member", "linked_by", "linked_at"],
                ((r.id, r.payer.id, r.member.id, r.linked_by, when(r.us)) for r in h.payer_members))
    if table == "invoice_bill_to":
        return (["id", "invoice", "payer", "kind", "name", "address", "kra_pin", "phone", "email"],
                ((r.id, r.invoice.id, r.payer.id, r.payer.kind, r.payer.name, r.payer.address, r.payer.kra_pin,
                  r.payer.phone, r.payer.email) for r in h.bill_tos))
    if table == "promo_code":
        return (["id", "code", "kind", "value", "description", "valid_from", "valid_to", "max_uses", "max_per_member",
                 "plans", "items", "active", "created_by", "created_at"],
                ((r.id, r.code, r.kind, r.value, r.description, r.valid_from, r.valid_to, r.max_uses, r.max_per_member,
                  [], [], True, r.created_by, when(r.us)) for r in h.promos))
    if table == "discount":
        return (["id", "invoice", "member", "invoice_line", "discount_line", "kind", "value", "amount", "net", "vat",
                 "currency", "reason", "promo", "status", "requested_by", "approved_by", "decided_at", "decision_note",
                 "entry", "created_at"],
                ((r.id, r.invoice.id, r.member.id, ids(r.line), ids(r.discount_line), r.kind, r.value, r.amount, r.net,
                  r.vat, cur, r.reason, ids(r.promo), r.status, r.requested_by, r.approved_by,
                  when(r.decided_us) if r.decided_us else None, r.note, ids(r.entry), when(r.us)) for r in h.discounts))
    if table == "sale":
        return (["id", "invoice", "kind", "member", "buyer_name", "buyer_phone", "method", "payment", "tendered", "change",
                 "reason", "idempotency_key", "staff", "location", "created_at"],
                ((r.id, r.invoice.id, "sale", ids(r.member), r.buyer_name, "", r.method, r.payment.id, r.tendered,
                  r.change, "", r.key, r.staff, r.location, when(r.us)) for r in h.sales))
    if table == "sale_line":
        return (["id", "sale", "invoice_line", "item", "category"],
                ((r.id, r.sale.id, r.line.id, r.item["id"], r.item["category"]) for r in h.sale_lines))
    if table == "session_pack":
        return (["id", "member", "item", "sale", "sessions", "used", "created_at"],
                ((r.id, r.member.id, r.item["id"], r.sale.id, r.sessions, r.used, when(r.us)) for r in h.packs))
    if table == "session_use":
        return (["id", "pack", "visit", "staff", "at"],
                ((r.id, r.pack.id, None, r.staff, when(r.us)) for r in h.uses))
    if table == "membership_freeze":
        return (["id", "membership", "member", "start_date", "end_date", "days", "status", "reason", "fee", "fee_invoice",
                 "ended_early_reason", "ended_by", "ended_at", "created_by", "created_at"],
                ((r.id, r.membership.id, r.member.id, r.start, r.end, r.days, "active", r.reason, Decimal(0), None,
                  r.ended_reason, r.ended_by, when(r.ended_us) if r.ended_us else None, r.created_by, when(r.us))
                 for r in h.freezes))
    raise KeyError(table)
