"""The API's member carries the language the member reads messages in (en or sw)."""

from tests.api.test_api_endpoints import _problem


async def test_a_member_is_registered_and_changed_with_a_language(writer):
    r = await writer.post("/api/v1/members", json={"first_name": "Achieng", "last_name": "Otieno",
                                                   "phone": "0712 345 678", "language": "sw"})
    assert r.status_code == 201, r.text
    member = r.json()
    assert member["language"] == "sw"
    # A change that leaves the language out keeps it.
    r = await writer.patch(f"/api/v1/members/{member['id']}", json={"email": "achieng@example.com"})
    assert r.status_code == 200 and r.json()["language"] == "sw"
    r = await writer.patch(f"/api/v1/members/{member['id']}", json={"language": "en"})
    assert r.status_code == 200 and r.json()["language"] == "en"
    _problem(await writer.patch(f"/api/v1/members/{member['id']}", json={"language": "fr"}), 422, "language")
    r = await writer.get(f"/api/v1/members/{member['id']}")
    assert r.json()["language"] == "en"
    r = await writer.get("/api/v1/members")
    assert [m["language"] for m in r.json()["items"]] == ["en"]
