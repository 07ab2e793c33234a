"""Who may call the API: a live key with the scope, within its rate limit; never a staff cookie."""

import json
import os

from portal.api import keys
from portal.settings import get_settings
from tables.api import ApiKey
from tables.audit import AuditLog


async def test_no_key_is_401_problem(api):
    async with api.client(None) as c:
        r = await c.get("/api/v1/members")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["status"] == 401 and "Bearer" in r.headers["www-authenticate"]


async def test_wrong_and_revoked_keys_are_401(api):
    key = await api.key("read")
    async with api.client(key) as c:
        assert (await c.get("/api/v1/plans")).status_code == 200
    async with api.client(key[:-1] + ("A" if key[-1] != "A" else "B")) as c:
        assert (await c.get("/api/v1/plans")).status_code == 401
    key_id = (await ApiKey.select(ApiKey.id).where(ApiKey.key_hash == keys.hash_key(key)).first())["id"]
    await keys.revoke_key(key_id, None)
    async with api.client(key) as c:
        r = await c.get("/api/v1/plans")
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


async def test_staff_cookie_counts_for_nothing(api, carol):
    """An admin's session cookie does not open the API (and so CSRF has nothing to protect)."""
    async with api.client(None) as c:
        c.cookies.update(carol.http.cookies)
        r = await c.get("/api/v1/members")
    assert r.status_code == 401


async def test_missing_scope_is_403(api):
    async with api.client(await api.key("read")) as c:
        r = await c.post("/api/v1/members", json={"first_name": "A", "last_name": "B", "phone": "0712345678"})
    assert r.status_code == 403 and "members" in r.json()["detail"]
    async with api.client(await api.key("members")) as c:
        assert (await c.get("/api/v1/plans")).status_code == 403


async def test_admin_scope_may_do_everything(api):
    async with api.client(await api.key("admin")) as c:
        assert (await c.get("/api/v1/plans")).status_code == 200
        r = await c.post("/api/v1/members", json={"first_name": "A", "last_name": "B", "phone": "0712345678"})
        assert r.status_code == 201


async def test_rate_limit_is_429_with_retry_after_per_key(api):
    os.environ["API_RATE_PER_MINUTE"] = "3"
    get_settings.cache_clear()
    try:
        key, other = await api.key("read"), await api.key("read")
        async with api.client(key) as c:
            codes = [(await c.get("/api/v1/plans")).status_code for _ in range(4)]
            last = await c.get("/api/v1/plans")
        assert codes == [200, 200, 200, 429]
        assert last.status_code == 429 and 1 <= int(last.headers["retry-after"]) <= 20
        assert last.headers["content-type"].startswith("application/problem+json")
        async with api.client(other) as c:  # each key has its own allowance
            assert (await c.get("/api/v1/plans")).status_code == 200
    finally:
        del os.environ["API_RATE_PER_MINUTE"]
        get_settings.cache_clear()


async def test_last_used_is_noted(api):
    key = await api.key("read")
    row = ApiKey.select(ApiKey.last_used_at).where(ApiKey.key_hash == keys.hash_key(key)).first
    assert (await row())["last_used_at"] is None
    async with api.client(key) as c:
        await c.get("/api/v1/plans")
    assert (await row())["last_used_at"] is not None


async def test_a_key_used_again_within_the_minute_is_not_rewritten(api):
    """Noting "last used" writes at most once a minute: within it, a request leaves the key's row
    as it was (the same row version, xmin), so it costs no write and no wait for the WAL flush.
    A minute later the next request notes the time again."""
    key = await api.key("read")

    async def version() -> dict:
        return (await ApiKey.raw("SELECT xmin::text AS v, last_used_at FROM api_key WHERE key_hash = {}",
                                 keys.hash_key(key)))[0]

    async with api.client(key) as c:
        assert (await c.get("/api/v1/plans")).status_code == 200
        noted = await version()
        for _ in range(3):
            assert (await c.get("/api/v1/plans")).status_code == 200
        assert await version() == noted
        await ApiKey.raw("UPDATE api_key SET last_used_at = now() - interval '61 seconds' WHERE key_hash = {}",
                         keys.hash_key(key))
        stale = await version()
        assert (await c.get("/api/v1/plans")).status_code == 200
        again = await version()
        assert again["v"] != stale["v"] and again["last_used_at"] > stale["last_used_at"]


async def test_writes_are_audited_with_the_key(api):
    key = await api.key("members", name="Front door kiosk")
    key_id = (await ApiKey.select(ApiKey.id).where(ApiKey.key_hash == keys.hash_key(key)).first())["id"]
    async with api.client(key) as c:
        r = await c.post("/api/v1/members", json={"first_name": "Achieng", "last_name": "Otieno", "phone": "0712345678"})
        member_id = r.json()["id"]
        await c.patch(f"/api/v1/members/{member_id}", json={"last_name": "Odhiambo"})
    rows = await AuditLog.select(AuditLog.action, AuditLog.details).where((AuditLog.entity == "member") & (AuditLog.entity_id == str(member_id))).order_by(AuditLog.id)
    assert [r["action"] for r in rows] == ["member.created", "member.updated"]
    assert all(json.loads(r["details"])["api_key"] == {"id": key_id, "name": "Front door kiosk"} for r in rows)
    assert "ptf_live_" not in str(rows)
