"""The Daraja OAuth token: fetched once, kept in PostgreSQL for every process, refreshed before it
expires, replaced once when Daraja calls it invalid, and fetched once by concurrent callers."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from portal.gateways import callback_urls
from portal.gateways.daraja import DarajaClient, token_key
from portal.gateways.http import GatewayError
from tests.gateways.test_daraja_client import INTERACTIVE, QUERY, REGISTER, STK, push, register

ROOT = Path(__file__).resolve().parents[2]


async def token_row(token_table, settings):
    return await token_table.select().where(token_table.gateway == token_key(settings)).first()


async def test_the_token_is_fetched_once_and_kept_in_the_database(daraja, traffic, token_table):
    accepted = await push(daraja, INTERACTIVE)
    await daraja.stk_query(accepted.checkout_request_id)
    await register(daraja)
    assert traffic.token_requests == 1
    assert traffic.requests[STK] == traffic.requests[QUERY] == traffic.requests[REGISTER] == 1

    row = await token_row(token_table, daraja.settings)
    assert row["token"]
    # The sandbox answers expires_in as the string "3599" (older docs).
    assert row["expires_at"] - row["updated_at"] == timedelta(seconds=3599)
    assert row["gateway"].startswith("daraja:")


async def test_expires_in_as_a_number_is_understood(daraja, traffic, control, token_table):
    await control.settings(expires_in_as_string=False, token_ttl=1800)
    await register(daraja)
    await register(daraja)
    assert traffic.token_requests == 1
    row = await token_row(token_table, daraja.settings)
    assert row["expires_at"] - row["updated_at"] == timedelta(seconds=1800)


async def test_a_new_client_reuses_the_stored_token(daraja, daraja_settings, traffic):
    await register(daraja)
    async with traffic.http_client() as http:
        await register(DarajaClient(daraja_settings, http))
    assert traffic.token_requests == 1
    assert traffic.requests[REGISTER] == 2


async def test_the_token_is_refreshed_before_it_expires(daraja, traffic, token_table):
    await register(daraja)
    old = await token_row(token_table, daraja.settings)
    # Four minutes of life left (Daraja would still take it): inside the five-minute margin.
    now = datetime.now(timezone.utc)
    await token_table.update({token_table.expires_at: now + timedelta(minutes=4),
                              token_table.updated_at: now - timedelta(minutes=56)},
                             ).where(token_table.gateway == old["gateway"])
    await register(daraja)
    new = await token_row(token_table, daraja.settings)
    assert traffic.token_requests == 2
    assert new["token"] != old["token"]
    assert new["expires_at"] > now + timedelta(minutes=59)
    assert traffic.statuses(REGISTER) == [200, 200]  # refreshed before, not after, a refusal


async def test_an_invalid_token_is_replaced_and_the_call_retried_once(daraja, traffic, control):
    accepted = await push(daraja, INTERACTIVE)
    await control.post("/tokens/expire")  # Daraja forgets it; our row still says it's good
    result = await daraja.stk_query(accepted.checkout_request_id)
    assert result.status == "pending"
    assert traffic.statuses(QUERY) == [404, 500]  # 404.001.03, then "being processed"
    assert traffic.token_requests == 2


async def test_invalid_token_in_the_per_api_style_is_retried_too(daraja, traffic, control):
    await control.settings(invalid_token_style="per_api")  # 400.003.01 on C2B
    await register(daraja)
    await control.post("/tokens/expire")
    await register(daraja)
    assert traffic.statuses(REGISTER) == [200, 400, 200]
    assert traffic.token_requests == 2


async def test_the_retry_happens_only_once(daraja, traffic, control):
    await control.settings(token_ttl=0)  # every token is dead on arrival
    with pytest.raises(GatewayError) as exc:
        await register(daraja)
    assert (exc.value.status, exc.value.code, exc.value.retryable) == (404, "404.001.03", False)
    assert "even with a new token" in exc.value.message
    assert traffic.statuses(REGISTER) == [404, 404]
    assert traffic.token_requests == 2


async def test_bad_consumer_credentials_are_not_retryable(daraja_settings, token_table, traffic):
    settings = dataclasses.replace(daraja_settings, daraja_consumer_secret="wrong")
    async with traffic.http_client() as http:
        with pytest.raises(GatewayError) as exc:
            await register(DarajaClient(settings, http))
    assert (exc.value.status, exc.value.code, exc.value.retryable) == (400, "400.008.01", False)
    assert traffic.total == 1


async def test_concurrent_clients_fetch_one_token(daraja_settings, token_table, traffic, control):
    # If Daraja really kills the previous token on each new one (FAQ claim, [U]), clients that
    # fetched their own would knock each other out.
    await control.settings(new_token_revokes_old=True)
    https = [traffic.http_client() for _ in range(10)]
    try:
        clients = [DarajaClient(daraja_settings, http) for http in https]
        # Ten separate clients (as in ten processes), plus five calls sharing one client.
        results = await asyncio.gather(*(register(c) for c in clients),
                                       *(register(clients[0]) for _ in range(5)))
    finally:
        await asyncio.gather(*(http.aclose() for http in https))
    assert len(results) == 15
    assert traffic.token_requests == 1
    assert traffic.statuses(REGISTER) == [200] * 15


PROCESS_SCRIPT = """
import asyncio, json, sys, time
from portal.gateways.daraja import DarajaClient
from portal.settings import get_settings

async def main(start_at):
    client = DarajaClient(get_settings())
    fetched = 0
    real_fetch = client._fetch_token
    async def counting_fetch():
        nonlocal fetched
        fetched += 1
        return await real_fetch()
    client._fetch_token = counting_fetch
    await asyncio.sleep(max(0.0, start_at - time.time()))
    token = await client.access_token()
    await client.aclose()
    print(json.dumps({"token": token, "fetched": fetched}))

asyncio.run(main(float(sys.argv[1])))
"""


async def test_separate_processes_fetch_one_token(daraja_settings, token_table):
    env = {**os.environ, "DARAJA_BASE_URL": daraja_settings.daraja_base_url,
           "DARAJA_CONSUMER_KEY": daraja_settings.daraja_consumer_key,
           "DARAJA_CONSUMER_SECRET": daraja_settings.daraja_consumer_secret}
    start_at = time.time() + 4  # all three ask at the same moment, once imported
    procs = [subprocess.Popen([sys.executable, "-c", PROCESS_SCRIPT, str(start_at)], cwd=ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    outputs = []
    for proc in procs:
        out, err = await asyncio.to_thread(proc.communicate, timeout=60)
        assert proc.returncode == 0, err
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    assert time.time() >= start_at
    assert sum(o["fetched"] for o in outputs) == 1
    assert len({o["token"] for o in outputs}) == 1
    row = await token_row(token_table, daraja_settings)
    assert row["token"] == outputs[0]["token"]


async def test_callback_urls_are_accepted_by_the_sandbox_rules(daraja):
    # The sandbox applies Daraja's banned-word rule to C2B URLs; ours must pass it.
    for url in callback_urls.all_callback_urls(daraja.settings).values():
        await daraja.register_c2b_urls(url, url)
