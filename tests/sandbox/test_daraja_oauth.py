"""Daraja OAuth: token grant, rejection, expiry and the invalid-token errors (gateways.md §1.3)."""

import re
import time

import httpx

from tests.sandbox.daraja_helpers import CFG, daraja  # noqa: F401  (fixture)


def test_token_grant_matches_documented_shape(daraja):
    r = daraja.get_token()
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"access_token", "expires_in"}
    assert re.fullmatch(r"[A-Za-z0-9]{28}", body["access_token"])
    assert body["expires_in"] == str(CFG.daraja_token_ttl)  # "3599": a string, as older docs


def test_expires_in_as_number_when_configured(daraja):
    daraja.settings(expires_in_as_string=False)
    assert daraja.get_token().json()["expires_in"] == CFG.daraja_token_ttl


def test_each_grant_is_a_new_token_and_old_ones_keep_working(daraja):
    t1 = daraja.get_token().json()["access_token"]
    t2 = daraja.get_token().json()["access_token"]
    assert t1 != t2
    r = daraja.post("/mpesa/stkpush/v1/processrequest", daraja.stk_body(), token=t1)
    assert r.status_code == 200, r.text


def test_new_token_revokes_old_when_configured(daraja):
    daraja.settings(new_token_revokes_old=True)
    t1 = daraja.get_token().json()["access_token"]
    daraja.get_token()
    r = daraja.post("/mpesa/stkpush/v1/processrequest", daraja.stk_body(), token=t1)
    assert r.status_code == 404
    assert r.json()["errorCode"] == "404.001.03"


def test_wrong_secret_is_rejected(daraja):
    r = daraja.get_token(secret="not-the-secret")
    assert r.status_code == 400
    assert r.json()["errorCode"] == "400.008.01"
    assert r.json()["errorMessage"] == "Invalid Authentication passed"
    assert "access_token" not in r.json()


def test_wrong_key_is_rejected(daraja):
    r = daraja.get_token(key="someone-else")
    assert (r.status_code, r.json()["errorCode"]) == (400, "400.008.01")


def test_non_basic_authorization_is_an_invalid_authentication_type(daraja):
    for headers in ({}, {"Authorization": "Bearer abc"}, {"Authorization": "Basic %%%"}):
        r = daraja.http.get("/oauth/v1/generate", params={"grant_type": "client_credentials"},
                            headers=headers)
        assert r.status_code == 400
        assert r.json()["errorCode"] == "400.008.01"


def test_wrong_grant_type_is_rejected(daraja):
    for params in ({"grant_type": "password"}, {}):
        r = daraja.http.get("/oauth/v1/generate", params=params,
                            auth=(CFG.daraja_consumer_key, CFG.daraja_consumer_secret))
        assert r.status_code == 400
        body = r.json()
        assert body["errorCode"] == "400.008.02"
        assert body["errorMessage"] == "Invalid grant type passed"
        assert set(body) == {"requestId", "errorCode", "errorMessage"}


def test_unknown_bearer_token_gets_invalid_access_token(daraja):
    r = daraja.post("/mpesa/stkpush/v1/processrequest", daraja.stk_body(), token="forged")
    assert r.status_code == 404
    body = r.json()
    assert body["errorCode"] == "404.001.03"
    assert body["errorMessage"] == "Invalid Access Token"
    assert isinstance(body["requestId"], str) and body["requestId"]


def test_missing_bearer_header_is_invalid_authentication_header(daraja):
    r = daraja.http.post("/mpesa/stkpush/v1/processrequest", json=daraja.stk_body())
    assert r.status_code == 404
    assert r.json()["errorCode"] == "404.001.04"
    assert r.json()["errorMessage"] == "Invalid Authentication Header"


def test_expire_all_tokens_now_via_control_api(daraja):
    token = daraja.token
    assert daraja.push().status_code == 200
    assert daraja.control("POST", "/tokens/expire")["expired"] >= 1
    for path, body in [
        ("/mpesa/stkpush/v1/processrequest", daraja.stk_body()),
        ("/mpesa/stkpushquery/v1/query", {}),
        ("/mpesa/c2b/v2/registerurl", {}),
        ("/mpesa/c2b/v1/simulate", {}),
        ("/mpesa/transactionstatus/v1/query", {}),
        ("/mpesa/reversal/v1/request", {}),
    ]:
        r = daraja.post(path, body, token=token)
        assert r.status_code == 404, path
        assert r.json()["errorCode"] == "404.001.03", path
    # A fresh token works again.
    fresh = daraja.get_token().json()["access_token"]
    r = daraja.post("/mpesa/stkpush/v1/processrequest", daraja.stk_body(), token=fresh)
    assert r.status_code == 200


def test_token_expires_after_its_ttl(daraja):
    daraja.settings(token_ttl=1)
    body = daraja.get_token().json()
    assert body["expires_in"] == "1"
    token = body["access_token"]
    assert daraja.post("/mpesa/stkpush/v1/processrequest", daraja.stk_body(), token=token
                       ).status_code == 200
    time.sleep(1.05)
    r = daraja.post("/mpesa/stkpush/v1/processrequest", daraja.stk_body(), token=token)
    assert (r.status_code, r.json()["errorCode"]) == (404, "404.001.03")


def test_per_api_invalid_token_style(daraja):
    daraja.settings(invalid_token_style="per_api")
    for path in ("/mpesa/c2b/v2/registerurl", "/mpesa/c2b/v2/simulate",
                 "/mpesa/transactionstatus/v1/query"):
        r = daraja.post(path, {}, token="forged")
        assert (r.status_code, r.json()["errorCode"]) == (400, "400.003.01"), path
        assert r.json()["errorMessage"] == "Invalid Access Token"
    r = daraja.post("/mpesa/reversal/v1/request", {}, token="forged")
    assert (r.status_code, r.json()["errorCode"]) == (404, "404.001.03")


def test_get_on_a_post_api_is_method_not_allowed(daraja):
    r = httpx.get(f"{daraja.base}/mpesa/stkpush/v1/processrequest",
                  headers={"Authorization": f"Bearer {daraja.token}"})
    assert r.status_code == 405
    assert r.json()["errorCode"] == "405.001"


def test_unknown_daraja_path_is_resource_not_found(daraja):
    r = daraja.post("/mpesa/stkpush/v9/processrequest", {})
    assert r.status_code == 404
    assert r.json()["errorCode"] == "404.001.01"
