import httpx


def test_it_serves_over_real_http(sandbox):
    r = httpx.get(f"{sandbox}/healthz")
    assert r.status_code == 200
    assert r.json() == {"sandbox": "ok"}
