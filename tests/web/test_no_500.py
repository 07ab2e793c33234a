"""Input that used to answer 500 (issue 12, "No 500, whatever is typed or posted"): each now gets
an answer a person can act on: the form shown back with the field's message and what was typed,
or 400/404 for an address that cannot name anything. The fuzz suite (tests/fuzz) looks for more."""

import re

from portal.auth import create_staff
from portal.lib.clock import today
from tables.billing import Invoice, Payment
from tables.closes import DayClose
from tables.members import Member, Plan
from tests.billing.helpers import invoice_for, pay
from tests.factories import make_location, make_member, make_plan
from tests.support.client import field_error, field_value

TOO_BIG_ID = "2147483648"  # one more than PostgreSQL's integer holds


# --- NUL bytes ----------------------------------------------------------------------------------

async def test_a_nul_byte_in_the_login_name_is_a_failed_login_not_a_500(anon):
    r = await anon.post("/login", {"username": "ad\x00min", "password": "whatever-password", "next": "/"})
    assert r.status_code < 500
    assert "id" not in anon.http.cookies  # no session


async def test_a_nul_byte_in_a_search_is_a_400(alice, bob):
    for client, path in ((alice, "/members"), (bob, "/dues")):
        r = await client.get(f"{path}?q=Wan%00jiku")
        assert r.status_code == 400, (path, r.status_code)
        assert "NUL" in r.text
        assert r.headers["x-content-type-options"] == "nosniff"  # the error page has our headers


async def test_a_nul_byte_in_a_form_field_is_taken_out_and_the_form_works(alice):
    r = await alice.post("/members/new", {"first_name": "Ami\x00na", "last_name": "Hassan", "phone": "0712345678"})
    assert r.status_code == 303
    assert (await Member.select(Member.first_name).first())["first_name"] == "Amina"
    invoice = await invoice_for((await Member.select(Member.id).first())["id"], 3000)
    r = await alice.post(f"/invoices/{invoice['id']}/reminders", {"reason": "Paying \x00on Friday"})
    assert r.status_code == 303 and "notice=reminders_paused" in r.headers["location"]
    assert "\x00" not in (await Invoice.select().where(Invoice.id == invoice["id"]).first())["reminders_paused"]


# --- digits that are not ASCII ------------------------------------------------------------------

async def test_digits_that_are_not_ascii_are_not_numbers(alice, bob):
    member = await make_member()
    await make_plan()
    for client, path in ((bob, "/payments?page=²"), (bob, "/payments?staff=²"), (bob, "/members?page=²"),
                         (bob, "/payments?location=١٢"), (bob, "/close?location=²")):
        r = await client.get(path)
        assert r.status_code == 200, (path, r.status_code)
    r = await bob.post("/plans/new", {"name": "Odd", "price": "3000", "duration_months": "²"})
    assert r.status_code == 422 and field_error(r.text, "duration_months") == "Use a whole number"
    assert field_value(r.text, "duration_months") == "²"
    r = await alice.post(f"/members/{member}/payments", {"method": "cash", "amount": "500", "invoice": "²"})
    assert r.status_code == 422 and await Payment.count() == 0
    r = await alice.post(f"/members/{member}/memberships", {"plan": "²", "start_date": "2026-11-01"})
    assert r.status_code == 422 and "Choose a plan" in r.text


async def test_an_id_in_the_path_written_in_other_digits_is_not_found(alice):
    member = await make_member()
    assert member < 10
    arabic = "٠١٢٣٤٥٦٧٨٩"[member]
    r = await alice.get(f"/members/{arabic}")
    assert r.status_code == 404


# --- numbers and dates the database cannot hold -------------------------------------------------

async def test_ids_beyond_the_database_are_not_found(alice, bob):
    for path in (f"/invoices/{TOO_BIG_ID}", f"/members/{TOO_BIG_ID}", f"/payments/{TOO_BIG_ID}",
                 "/members/99999999999999999999999", f"/members/{TOO_BIG_ID}/statement"):
        r = await alice.get(path)
        assert r.status_code == 404, (path, r.status_code)
        assert "There is nothing here" in r.text
    r = await alice.post(f"/members/{TOO_BIG_ID}/payments", {"method": "cash", "amount": "10"})
    assert r.status_code == 404


async def test_filters_beyond_the_database_still_show_the_list(bob):
    for query in (f"member={TOO_BIG_ID}", f"location={TOO_BIG_ID}", f"staff={TOO_BIG_ID}",
                  "page=99999999999999999999", "date_from=9999-12-31", "date_to=9999-12-31"):
        r = await bob.get(f"/payments?{query}")
        assert r.status_code == 200, (query, r.status_code)
    r = await bob.get("/payments?date_from=9999-12-31")
    assert "Use a date like" in r.text
    r = await bob.get("/members?page=99999999999999999999")
    assert r.status_code == 200


async def test_the_payments_csv_with_an_impossible_staff_filter_is_whole(bob):
    member = await make_member()
    await pay(member, 100)
    r = await bob.get(f"/payments.csv?staff={TOO_BIG_ID}")
    assert r.status_code == 200
    assert r.text.startswith("receipt_number,")  # the whole CSV: the stream was not cut
    # A filter that cannot name a staff member is no filter (as any unreadable one), so the payment is listed.
    assert len(r.text.strip().splitlines()) == 2


async def test_amounts_no_column_can_hold_are_a_form_error_that_keeps_what_was_typed(alice, bob):
    member = await make_member()
    for amount in ("99999999999", "1e30"):
        r = await alice.post(f"/members/{member}/payments", {"method": "cash", "amount": amount})
        assert r.status_code == 422, amount
        assert field_error(r.text, "amount"), amount
        assert f'value="{amount}"' in r.text  # the member page has two amount fields: the desk's kept it
        r = await alice.post(f"/members/{member}/mpesa", {"phone": "0712345678", "amount": amount})
        assert r.status_code == 422 and f'value="{amount}"' in r.text
        # The desk card form sends what is owed (a hidden field, nothing typed): a forged amount is refused.
        r = await alice.post(f"/members/{member}/card", {"amount": amount})
        assert r.status_code == 422
        r = await bob.post("/plans/new", {"name": "Huge", "price": amount, "duration_months": "1"})
        assert r.status_code == 422 and field_error(r.text, "price")
        assert field_value(r.text, "price") == amount
    assert await Payment.count() == 0 and await Plan.count() == 0


async def test_a_close_count_no_column_can_hold_is_a_form_error(bob):
    loc = await make_location()
    member = await make_member()
    desk = await create_staff("desk1", "desk-password-1", "front_desk", location_id=loc)
    await pay(member, 100, staff_id=desk)
    page = await bob.get(f"/close?location={loc}")
    keys = re.findall(r'name="counted_([^"]+)"', page.text)
    assert keys, "the desk's cash should be listed to count"
    for counted, notes in (("1e30", ""), ("99999999999", ""), ("", "99999999999999999"), ("", "²")):
        r = await bob.post("/close", {"location": str(loc), "date": today().isoformat(),
                                      f"counted_{keys[0]}": counted, f"d_{keys[0]}_1000": notes})
        assert r.status_code == 422, (counted, notes, r.status_code)
        assert 'class="error"' in r.text and "close-error" not in r.text  # the count's own message


async def test_dates_far_away_on_analytics_are_said_and_kept(bob):
    r = await bob.get("/analytics?start=9999-12-31&end=9999-12-31")
    assert r.status_code == 200
    assert "Use a date like" in r.text
    assert 'value="9999-12-31"' in r.text


# --- rows that do not exist ---------------------------------------------------------------------

async def test_the_status_of_a_payment_that_does_not_exist_is_not_found(alice):
    r = await alice.get("/payments/999999/status", htmx=True)
    assert r.status_code == 404


async def test_a_close_for_a_location_that_does_not_exist_is_no_500(bob):
    r = await bob.get("/close?location=0")
    assert r.status_code < 500
    r = await bob.post("/close", {"location": "0"})
    assert r.status_code < 500
    r = await bob.post("/close", {"location": TOO_BIG_ID})
    assert r.status_code < 500


async def test_a_day_that_cannot_be_read_is_never_replaced_by_today(bob):
    """The close read an unreadable day as today: a garbled form would close the wrong day."""
    loc = await make_location()
    member = await make_member()
    await pay(member, 100, staff_id=await create_staff("desk2", "desk-password-2", "front_desk", location_id=loc))
    r = await bob.post("/close", {"location": str(loc), "date": "07/12/2026"})
    assert r.status_code == 422 and "could not be read" in r.text
    assert await DayClose.count() == 0
    r = await bob.get(f"/close?location={loc}&date=31-31-2026")
    assert r.status_code == 422 and "“31-31-2026” is not a day this page can show; showing today" in r.text


async def test_reopening_a_close_that_does_not_exist_is_not_found(carol):
    r = await carol.post("/close/999999/reopen", {})
    assert r.status_code == 404


async def test_a_pay_link_for_a_settled_invoice_says_why_there_is_none(alice):
    member = await make_member()
    invoice = await invoice_for(member, 100)
    await pay(member, 116, invoice_id=invoice["id"])
    r = await alice.post(f"/invoices/{invoice['id']}/paylink")
    assert r.status_code == 303 and "notice=paylink_refused" in r.headers["location"]
    page = await alice.get(r.headers["location"])
    assert "only an open invoice can have one" in page.text


# --- dates that cannot be read are said, not replaced --------------------------------------------

async def test_a_statement_date_that_cannot_be_read_is_said_and_kept(alice):
    member = await make_member()
    r = await alice.get(f"/members/{member}/statement?start=2026-02-30&end=9999-12-31")
    assert r.status_code == 200
    assert field_error(r.text, "start") == "Use a date like 2026-11-30"
    assert field_error(r.text, "end") == "Use a date like 2026-11-30"
    assert 'value="2026-02-30"' in r.text and 'value="9999-12-31"' in r.text
    ok = await alice.get(f"/members/{member}/statement?start=2026-01-01&end=2026-03-31")
    assert field_error(ok.text, "start") is None and 'value="2026-01-01"' in ok.text


async def test_cancelling_a_card_payment_that_does_not_exist_is_not_found(alice):
    r = await alice.post("/payments/999999/card-cancel")
    assert r.status_code == 404


async def test_a_free_plan_is_refused_where_it_is_made_and_where_it_is_used(alice, bob):
    """Enrolling on a plan priced 0 was a 500 (the ledger holds no invoice for nothing)."""
    r = await bob.post("/plans/new", {"name": "Staff free", "price": "0", "duration_months": "1", "active": "on"})
    assert r.status_code == 422 and field_error(r.text, "price") == "A plan must cost something"
    assert field_value(r.text, "name") == "Staff free"
    free = await make_plan("Old free plan", price="0")  # saved before the rule
    member = await make_member()
    r = await alice.post(f"/members/{member}/memberships", {"plan": str(free), "start_date": "2026-12-07"})
    assert r.status_code == 422
    assert field_error(r.text, "plan").startswith("This plan costs nothing")
    assert await Invoice.count() == 0
