"""Admins make API keys at /settings/api-keys: shown once, stored hashed, revoked, last use shown."""

import re

from portal.api import keys
from tables.api import ApiKey
from tests.support.client import field_error


async def test_admin_makes_a_key_sees_it_once_and_revokes_it(carol, api):
    page = await carol.get("/settings/api-keys")
    assert page.status_code == 200 and 'href="/settings/api-keys"' in page.text  # linked from the admin's menu
    r = await carol.post("/settings/api-keys", {"name": "Door controller", "scope_read": "on"})
    assert r.status_code == 200
    key = re.search(r'data-testid="key">(ptf_live_[A-Za-z0-9_-]+)<', r.text).group(1)
    row = await ApiKey.select().where(ApiKey.name == "Door controller").first()
    assert row["key_hash"] == keys.hash_key(key) and key not in str(row) and row["scopes"] == "read"
    again = await carol.get("/settings/api-keys")
    assert key not in again.text and row["prefix"] in again.text  # never shown again, told apart by its start

    async with api.client(key) as c:
        assert (await c.get("/api/v1/plans")).status_code == 200
    listed = await carol.get("/settings/api-keys")
    used = re.search(rf'data-testid="api-key-{row["id"]}".*?data-testid="last-used">(.*?)<', listed.text, re.S).group(1)
    assert used != "Never"

    assert (await carol.post(f"/settings/api-keys/{row['id']}/revoke")).status_code == 303
    async with api.client(key) as c:
        assert (await c.get("/api/v1/plans")).status_code == 401
    assert "revoked" in (await carol.get("/settings/api-keys")).text


async def test_bad_key_form_is_shown_again_with_the_fields_messages(carol):
    r = await carol.post("/settings/api-keys", {"name": "", "location": "abc"})
    assert r.status_code == 422
    assert field_error(r.text, "name") and field_error(r.text, "location")
    assert 'data-testid="error-scopes"' in r.text and "ptf_live_" not in r.text
    assert await ApiKey.count() == 0


async def test_only_admins_manage_keys(bob, alice):
    for client in (bob, alice):
        assert (await client.get("/settings/api-keys")).status_code == 403
        assert (await client.post("/settings/api-keys", {"name": "x", "scope_admin": "on"})).status_code == 403
    assert await ApiKey.count() == 0
