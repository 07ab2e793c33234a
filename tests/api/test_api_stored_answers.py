"""An idempotent write's answer is stored as JSON and sent as stored (portal/api/idempotency.py),
so it must be written as the OpenAPI document describes it, not as Python prints it."""

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from portal.api.idempotency import as_json


def test_dates_and_times_are_rfc3339_and_decimals_strings():
    at = datetime(2026, 12, 7, 13, 18, 55, 730815, tzinfo=timezone(timedelta(hours=3)))
    answer = as_json({"completed_at": at, "due_date": date(2026, 12, 31), "amount": Decimal("1000.00"),
                      "nested": [{"at": at}], "none": None})
    # str(datetime) gives "2026-12-07 13:18:55.730815+03:00", which is not a JSON Schema date-time
    # (Schemathesis found POST /payments/{id}/refund answering so).
    assert answer == {"completed_at": "2026-12-07T13:18:55.730815+03:00", "due_date": "2026-12-31",
                      "amount": "1000.00", "nested": [{"at": "2026-12-07T13:18:55.730815+03:00"}], "none": None}
