"""No secret and no pay-link token in any log line (issue 12, item 2).

The real `portal run` and `portal worker` (SANDBOX=0, every secret set to a value of its own) are
driven through the requests that use each secret: a member pays two pay links (M-Pesa STK push,
whose callback comes back on the Daraja token URL; a card, whose webhook carries the secret hash
and whose verification uses the secret key), the gateways post C2B, result and SMS delivery
callbacks on their token URLs, a wrong token is refused, and requests that may fail carry a pay
token. Everything the processes write (stdout and stderr: uvicorn's access and error logs, ours,
the worker's) is then searched for every secret; the requests themselves must be in the logs.

It runs twice: readable lines at INFO (what `make run` shows), and JSON at DEBUG (every library's
chatter too, so more lines that could leak). Each request's line (portal.lib.logs) must carry a
request id and the route's template, and the worker's line for the STK push must carry the id of
the request that queued it.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from portal.api import keys
from portal.billing import paylinks
from portal.sandbox.app import create_sandbox_app
from portal.sandbox.config import SandboxConfig
from tables.billing import Payment
from tests.billing.helpers import invoice_for
from tests.factories import make_member
from tests.support.logs import jobs_in, parse, requests_in
from tests.support.servers import free_port, serve_in_thread

BIN = Path(sys.executable).parent
SMTP_PASSWORD = "smtp-pw-Rk4Hq8Zt2Wm6"
SECRETS = {
    "DARAJA_CONSUMER_SECRET": "cs-Qm4Hx8Vt2Lp6Rz9Ab",
    "DARAJA_PASSKEY": "pk-Wn3Jd7Sb5Kf1Yc8TgCd",
    "DARAJA_CALLBACK_TOKEN": "cb-Hv6Pq2Nm9Xw4Zr7Ef",
    "DARAJA_SECURITY_CREDENTIAL": "sc-Bt5Gy8Dk3Mw6Fj1Gh",
    "FLUTTERWAVE_SECRET_KEY": "FLWSECK_TEST-fk7Rx2Lq9Vn4Ij",
    "FLUTTERWAVE_SECRET_HASH": "fh-Ty3Wk8Pz5Hc2Nd6Kl",
    "AT_API_KEY": "at-Ks9Ub4Jr7Qe1Vx3Mn",
    "AT_CALLBACK_TOKEN": "st-Gd2Zn6Yb8Lw5Rm4Op",
    "METRICS_TOKEN": "mt-Pw8Xc3Vb6Nq1Ls5Df",
}


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen in {timeout} s")


async def _await_status(payment_id: int, status: str, timeout: float = 30) -> None:
    for _ in range(int(timeout / 0.2)):
        row = await Payment.select(Payment.status).where(Payment.id == payment_id).first()
        if row and row["status"] == status:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"payment {payment_id} never became {status}: {row}")


def _csrf_form(web: httpx.Client, page: httpx.Response, **fields) -> dict:
    attempt = page.text.split('name="attempt" value="', 1)[1].split('"', 1)[0]
    return {"_csrf_token": web.cookies["portal_csrf"], "attempt": attempt, **fields}


@pytest.mark.parametrize("log_format,log_level", [("text", "INFO"), ("json", "DEBUG")])
async def test_a_run_that_uses_every_secret_logs_none_of_them(db, queue, tmp_path, log_format, log_level):
    port = free_port()
    portal = f"http://127.0.0.1:{port}"
    config = SandboxConfig(
        callback_delay=0.0, daraja_consumer_key="ck-Lm3Np7Qr1St5", daraja_consumer_secret=SECRETS["DARAJA_CONSUMER_SECRET"],
        daraja_passkey=SECRETS["DARAJA_PASSKEY"], flutterwave_secret_key=SECRETS["FLUTTERWAVE_SECRET_KEY"],
        flutterwave_secret_hash=SECRETS["FLUTTERWAVE_SECRET_HASH"], at_username="gym-at", at_api_key=SECRETS["AT_API_KEY"],
        flutterwave_webhook_url=f"{portal}/hooks/flutterwave",
        at_delivery_report_url=f"{portal}/hooks/sms/delivery/{SECRETS['AT_CALLBACK_TOKEN']}")

    # Two invoices, each with its pay link (signed with this run's SECRET_KEY, which the portal shares).
    by_mpesa = await invoice_for(await make_member("Achieng", "Otieno", phone="254700000001"), 3000)
    by_card = await invoice_for(await make_member("Baraka", "Mwangi", email="baraka@example.com"), 4500)
    mpesa_link = await paylinks.create_link(by_mpesa["id"], None)
    card_link = await paylinks.create_link(by_card["id"], None)
    _, api_key = await keys.create_key("Books", ["read", "members"], None, None)

    # The log lines go to stderr; stdout has the banner and piccolo's migration report.
    log_path, worker_log_path = tmp_path / "portal.log", tmp_path / "worker.log"
    out_path, worker_out_path = tmp_path / "portal.out", tmp_path / "worker.out"
    with serve_in_thread(create_sandbox_app(config)) as sandbox, open(log_path, "wb") as log_file, \
            open(worker_log_path, "wb") as worker_log_file, open(out_path, "wb") as out_file, \
            open(worker_out_path, "wb") as worker_out_file:
        config.public_url = sandbox
        env = {**os.environ, **SECRETS, "PORT": str(port), "DEMO": "0", "SANDBOX": "0", "WORKER_IN_PROCESS": "0",
               "PUBLIC_BASE_URL": portal, "DARAJA_BASE_URL": sandbox, "DARAJA_CONSUMER_KEY": config.daraja_consumer_key,
               "DARAJA_SHORTCODE": config.daraja_shortcode, "DARAJA_INITIATOR": "gym-initiator",
               "FLUTTERWAVE_BASE_URL": f"{sandbox}/v3", "AT_BASE_URL": sandbox, "AT_USERNAME": config.at_username,
               "SMS_RECEIPTS": "1", "SMTP_URL": f"smtp://receipts:{SMTP_PASSWORD}@127.0.0.1:{free_port()}",
               # Web and worker count into one folder (prometheus-client's multi-process mode).
               "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"), "LOG_FORMAT": log_format, "LOG_LEVEL": log_level}
        proc = subprocess.Popen([str(BIN / "portal"), "run"], env=env, stdout=out_file, stderr=log_file)
        worker = subprocess.Popen([str(BIN / "portal"), "worker"], env=env, stdout=worker_out_file, stderr=worker_log_file)
        try:
            def up():
                assert proc.poll() is None and worker.poll() is None, log_path.read_text() + worker_log_path.read_text()
                try:
                    return httpx.get(f"{portal}/healthz", timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False

            await asyncio.to_thread(_wait_for, up, 60, "portal run answering /healthz")
            with httpx.Client(base_url=portal, timeout=15) as web:
                # M-Pesa through a pay link: the worker pushes with the consumer secret and the
                # passkey; the sandbox calls back on the Daraja token URL.
                page = web.get(f"/pay/{mpesa_link}")
                assert page.status_code == 200
                r = web.post(f"/pay/{mpesa_link}/mpesa", data=_csrf_form(web, page, phone="254700000001"))
                assert r.status_code == 303, r.text
                stk_request_id = r.headers["x-request-id"]
                await _await_status(int(r.headers["location"].rsplit("/", 1)[1]), "completed")

                # A card through the other link: checkout opened with the secret key, the
                # webhook signed with the secret hash, the return verified.
                page = web.get(f"/pay/{card_link}")
                r = web.post(f"/pay/{card_link}/card", data=_csrf_form(web, page))
                assert r.status_code == 303 and r.headers["location"].startswith(sandbox), r.text
                paid = httpx.post(r.headers["location"], data={"card": "success", "scenario": "normal"})
                assert paid.status_code == 303, paid.text
                back = web.get(paid.headers["location"].removeprefix(portal))
                assert back.status_code == 303, back.text
                await _await_status(int(back.headers["location"].rsplit("/", 1)[1]), "completed")
                assert web.get(back.headers["location"]).status_code == 200

                # Gateways on their token URLs, and a forger without the token.
                hook = f"/hooks/daraja/%s/{SECRETS['DARAJA_CALLBACK_TOKEN']}"
                c2b = {"TransactionType": "Pay Bill", "TransID": "SEC1234567", "TransTime": "20261126101500",
                       "TransAmount": "100.00", "BusinessShortCode": config.daraja_shortcode, "BillRefNumber": "NOBODY",
                       "InvoiceNumber": None, "OrgAccountBalance": "", "ThirdPartyTransID": None,
                       "MSISDN": "2547 ***** 149", "FirstName": "JOHN", "MiddleName": "", "LastName": ""}
                for kind in ("c2b/validation", "c2b/confirmation", "result", "timeout"):
                    r = web.post(hook % kind, content=json.dumps(c2b), headers={"content-type": "application/json"})
                    assert r.status_code == 200, (kind, r.text)
                r = web.post(f"/hooks/sms/delivery/{SECRETS['AT_CALLBACK_TOKEN']}",
                             data={"id": "ATXid_secrets", "status": "Success", "phoneNumber": "+254700000001"})
                assert r.status_code == 200
                r = web.post("/hooks/daraja/stk/forged-token-1234", content=b"{}", headers={"content-type": "application/json"})
                assert r.status_code == 200

                # The scraper's token; the worker's jobs are in the web process's scrape.
                assert web.get("/metrics", headers={"authorization": "Bearer wrong"}).status_code == 401
                scraped = web.get("/metrics", headers={"authorization": f"Bearer {SECRETS['METRICS_TOKEN']}"})
                assert scraped.status_code == 200
                assert 'portal_job_duration_seconds_count{job="send_stk_push",queue="portal",status="complete"}' \
                    in scraped.text, scraped.text

                # The API with its key: in the header as it should be, in a query string as it
                # should not (refused, and still not logged), and a write that is audited.
                bearer = {"authorization": f"Bearer {api_key}"}
                assert web.get("/api/v1/members", headers=bearer).status_code == 200
                assert web.post("/api/v1/members", headers={**bearer, "Idempotency-Key": "books-1"},
                                json={"first_name": "Api", "last_name": "Member", "phone": "0712000111"}).status_code == 201
                assert web.get(f"/api/v1/members?api_key={api_key}").status_code == 401

                # Requests that may fail, with a pay token in them (answered, whatever the answer).
                web.get(f"/pay/{mpesa_link}/payments/2147483648")
                web.get(f"/pay/{quote(mpesa_link)}%00")
        finally:
            for p in (proc, worker):
                p.send_signal(signal.SIGINT)
            for p in (proc, worker):
                await asyncio.to_thread(p.wait, 30)

    log = log_path.read_text() + worker_log_path.read_text()
    everything = log + out_path.read_text() + worker_out_path.read_text()
    # No secret, nor any pay token, in any form, anywhere ...
    secrets = [*SECRETS.values(), SMTP_PASSWORD, os.environ["SECRET_KEY"], mpesa_link, card_link, "forged-token-1234",
               api_key]
    for secret in secrets:
        for form in {secret, quote(secret, safe=""), secret.split(".")[1] if secret.count(".") == 2 else secret}:
            leaks = [line for line in everything.splitlines() if form in line]
            assert not leaks, f"{form!r} written to the log:\n" + "\n".join(leaks)
    # ... while the requests are in the log, each by its route's template with its request id
    # (nothing passes by logging nothing), ...
    events = parse(log, log_format)
    requests = requests_in(events)
    assert requests and all(r["request_id"] for r in requests), log
    logged = {(r["method"], r.get("route"), str(r["status"])) for r in requests}
    for method, route, status in [
            ("GET", "/pay/{token}", "200"), ("POST", "/pay/{token}/mpesa", "303"), ("POST", "/pay/{token}/card", "303"),
            ("GET", "/pay/{token}/card/return", "303"), ("POST", "/hooks/daraja/stk/{token}", "200"),
            ("POST", "/hooks/flutterwave", "200"), ("POST", "/hooks/daraja/c2b/confirmation/{token}", "200"),
            ("POST", "/hooks/daraja/c2b/validation/{token}", "200"), ("POST", "/hooks/sms/delivery/{token}", "200"),
            ("GET", "/api/v1/members", "200"), ("POST", "/api/v1/members", "201"), ("GET", "/api/v1/members", "401"),
            ("GET", "/metrics", "200"), ("GET", "/metrics", "401")]:
        assert (method, route, status) in logged, f"{method} {route} {status} not logged: {sorted(logged, key=str)}"
    assert any(r["method"] == "GET" and r.get("route") == "/pay/{token}/payments/{payment_id}" for r in requests), logged
    assert not [r for r in requests if "[redacted]" in str(r.get("route"))], "a route logged as its path"
    # ... the worker's line for the push carries the request that queued it, ...
    pushes = jobs_in(events, "send_stk_push")
    assert pushes and all(p["request_id"] == stk_request_id and p["status"] == "complete" for p in pushes), pushes
    assert jobs_in(events, "send_message"), "no SMS receipt job line"
    # ... and our other lines.
    for line in ["rejected daraja stk callback", "worker running: queues"]:
        assert line in log, f"{line!r} not in the log:\n{log}"
