"""A discount given while selling at the desk: off the whole sale, with a reason, under the same
rule and desk limit as any discount (portal.billing.discounts); bad input comes back with what
was typed, and nothing is sold until it is right."""

from decimal import Decimal

from tables.billing import Invoice, InvoiceLine, Payment
from tables.discounts import Discount
from tables.ledger import LedgerEntry, LedgerLeg
from tables.sales import Sale
from tests.billing.helpers import assert_books_agree
from tests.factories import make_location
from tests.sales.helpers import default_items
from tests.support.client import field_error, field_value

D = Decimal


async def _form(client, items: dict, **extra) -> dict:
    key = field_value((await client.get("/sales/new")).text, "idempotency_key")
    return {"idempotency_key": key, f"qty_{items['Day pass']}": "2", f"qty_{items['Water']}": "1", "method": "cash",
            "tendered": "1000", **extra}


async def test_the_desk_gives_a_student_ten_percent_off_a_sale_and_the_change_is_on_the_discounted_total(alice):
    """2 Day passes at 500 + Water 100 = 1,100 (VAT 16% inclusive); 10% student discount = 110.00,
    its VAT 110 - 110/1.16 = 110 - 94.83 = 15.17; total 990.00; 1,000 tendered -> change 10.00.
    One discount entry: discounts +94.83, vat_payable +15.17, receivable -110.00."""
    await make_location()
    items = await default_items()
    r = await alice.post("/sales/new", await _form(alice, items, discount_kind="percent", discount_value="10",
                                                   discount_reason="Student, ID seen"))
    assert r.status_code == 303, r.text
    sale = await Sale.select().first()
    invoice = await Invoice.select().where(Invoice.id == sale["invoice"]).first()
    assert (invoice["total"], invoice["paid"], invoice["status"]) == (D("990.00"), D("990.00"), "paid")
    assert (sale["tendered"], sale["change"]) == (D("1000.00"), D("10.00"))
    payment = await Payment.select().where(Payment.id == sale["payment"]).first()
    assert payment["amount"] == D("990.00")
    discount = await Discount.select().first()
    assert (discount["status"], discount["amount"], discount["net"], discount["vat"], discount["invoice_line"]) == (
        "approved", D("110.00"), D("94.83"), D("15.17"), None)
    line = await InvoiceLine.select().where(InvoiceLine.id == discount["discount_line"]).first()
    assert line["total"] == D("-110.00") and "Student, ID seen" in line["description"]
    entry = await LedgerEntry.select().where(LedgerEntry.id == discount["entry"]).first()
    legs = {(leg["account"]): leg["amount"] for leg in await LedgerLeg.select().where(LedgerLeg.entry == entry["id"])}
    assert entry["kind"] == "discount" and legs == {"discounts": D("94.83"), "vat_payable": D("15.17"),
                                                    "receivable": D("-110.00")}
    page = await alice.get(r.headers["location"])
    assert 'data-testid="sale-change">KES 10' in page.text
    await assert_books_agree()


async def test_above_the_desk_limit_a_manager_approves_on_the_same_screen(alice, bob):
    """20% of 1,100 = 220.00 is above the desk's 10%: refused with what was typed, nothing sold; a
    wrong password is refused; Bob's name and password approve it: total 880.00, Bob the approver."""
    await make_location()
    items = await default_items()
    typed = await _form(alice, items, discount_kind="percent", discount_value="20", discount_reason="Corporate visitor")
    r = await alice.post("/sales/new", typed)
    assert r.status_code == 422
    assert field_error(r.text, "discount_value").startswith("KES 220 is above the front desk&#39;s limit (10%)")
    assert field_value(r.text, "discount_value") == "20" and field_value(r.text, "discount_reason") == "Corporate visitor"
    assert await Sale.count() == 0 and await Invoice.count() == 0 and await Discount.count() == 0
    r = await alice.post("/sales/new", {**typed, "manager_username": "bob", "manager_password": "wrong-password"})
    assert r.status_code == 422
    assert field_error(r.text, "manager_username") == "That is not a manager&#39;s user name and password"
    assert field_value(r.text, "manager_password") == "" and await Sale.count() == 0
    r = await alice.post("/sales/new", {**typed, "manager_username": "bob", "manager_password": "bob-password-1"})
    assert r.status_code == 303, r.text
    invoice = await Invoice.select().first()
    assert invoice["total"] == D("880.00") and invoice["status"] == "paid"
    discount = await Discount.select().first()
    assert discount["approved_by"] != discount["requested_by"] and discount["amount"] == D("220.00")
    await assert_books_agree()


async def test_bad_discount_input_comes_back_with_what_was_typed_and_nothing_is_sold(alice):
    await make_location()
    items = await default_items()
    r = await alice.post("/sales/new", await _form(alice, items, discount_value="ten", discount_reason=""))
    assert r.status_code == 422
    assert field_error(r.text, "discount_value") and field_value(r.text, "discount_value") == "ten"
    assert field_error(r.text, "discount_reason") == "Give a reason for the discount"
    r = await alice.post("/sales/new", await _form(alice, items, discount_kind="percent", discount_value="150",
                                                   discount_reason="Typo"))
    assert r.status_code == 422
    assert field_error(r.text, "discount_value") == "A percentage is more than 0 and at most 100"
    assert field_value(r.text, "discount_reason") == "Typo"
    r = await alice.post("/sales/new", await _form(alice, items, discount_kind="amount", discount_value="2000",
                                                   discount_reason="Too much"))
    assert r.status_code == 422 and field_error(r.text, "discount_value").startswith("A discount cannot be more than")
    # The cash tendered is checked against the discounted total: 1,100 less 100 = 1,000, 950 is short.
    r = await alice.post("/sales/new", await _form(alice, items, discount_kind="amount", discount_value="100",
                                                   discount_reason="Goodwill", tendered="950"))
    assert r.status_code == 422 and "less than the total, KES 1,000" in field_error(r.text, "tendered")
    assert await Sale.count() == 0 and await Invoice.count() == 0 and await Payment.count() == 0
