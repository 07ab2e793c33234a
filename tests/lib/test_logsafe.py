"""The log redaction itself: every route with a secret in its path is covered, and tracebacks and
arguments lose their secrets too (the whole run is tests/test_no_secrets_in_logs.py)."""

import io
import logging
import re

from litestar.routes import HTTPRoute

from portal.app import create_app
from portal.lib import logsafe
from portal.settings import Settings

TOKEN = "7.Zx9Qw3Er5Ty7Ui1Op3As5Df7Gh9Jk1L.0a1b2c3d4e5f6a7b8c9d"


def _sample(path: str, token: str) -> str:
    return re.sub(r"\{(\w+):(\w+)\}", lambda m: token if m.group(1) == "token" else "12", path)


def test_every_route_with_a_token_in_its_path_is_redacted_and_no_other(settings):
    app = create_app(settings, manage_resources=False)
    paths = {route.path_format for route in app.routes if isinstance(route, HTTPRoute)}
    paths |= {route.path for route in app.routes if isinstance(route, HTTPRoute)}
    with_token = sorted(p for p in paths if "{token:" in p)
    assert {"/pay/{token:str}", "/hooks/daraja/c2b/confirmation/{token:str}", "/hooks/sms/delivery/{token:str}"} <= set(with_token)
    for path in with_token:
        line = f'127.0.0.1:5000 - "POST {_sample(path, TOKEN)}?x=1 HTTP/1.1" 200'
        assert TOKEN not in logsafe.redact(line), path
        assert logsafe.redact(line) == f'127.0.0.1:5000 - "POST {_sample(path, logsafe.PLACEHOLDER)}?x=1 HTTP/1.1" 200'
    for path in sorted(p for p in paths if "{" not in p):
        assert logsafe.redact(f"GET {path} done") == f"GET {path} done", path


def test_secret_values_in_messages_arguments_and_tracebacks_are_replaced():
    env = {"SECRET_KEY": "k" * 40, "DARAJA_CALLBACK_TOKEN": "hook-token-Pq7Rs9", "AT_API_KEY": "at-key-Lm4Nb6Vc",
           "DATABASE_URL": "postgresql://portal:db-pass-Hy6Tg4@db.example/portal",
           "SMTP_URL": "smtp://mailer:mail-pass-Wq2Ez8@mail.example:587"}
    logsafe.install(Settings.from_env(env, dotenv=None))
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log = logging.getLogger("tests.logsafe")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.INFO)  # not left to whatever level the root logger has
    try:
        log.warning("calling %s with %s", f"https://x/hooks/daraja/stk/{env['DARAJA_CALLBACK_TOKEN']}", {"apiKey": env["AT_API_KEY"]})
        log.info("%d payments, %.1f s", 3, 0.25)
        try:
            raise RuntimeError(f"failed on /pay/{TOKEN}/mpesa with db-pass-Hy6Tg4 and {'k' * 40}")
        except RuntimeError:
            log.exception("unhandled error on GET /pay/%s", TOKEN)
    finally:
        log.removeHandler(handler)
        log.setLevel(logging.NOTSET)
    text = out.getvalue()
    for secret in ("hook-token-Pq7Rs9", "at-key-Lm4Nb6Vc", "db-pass-Hy6Tg4", "mail-pass-Wq2Ez8", "k" * 40, TOKEN):
        assert secret not in text
    assert "calling https://x/hooks/daraja/stk/[redacted] with {'apiKey': '[redacted]'}" in text
    assert "3 payments, 0.2 s" in text  # numbers keep their formats
    assert "unhandled error on GET /pay/[redacted]" in text
    assert "RuntimeError: failed on /pay/[redacted]/mpesa with [redacted] and [redacted]" in text
    assert "Traceback (most recent call last)" in text


def test_api_keys_are_redacted_wherever_they_appear():
    from portal.api.keys import new_key

    key = new_key()
    for line in (f'"GET /api/v1/members?api_key={key} HTTP/1.1" 401', f"Authorization: Bearer {key}",
                 f"ValueError: bad key {key}."):
        assert key not in logsafe.redact(line) and logsafe.PLACEHOLDER in logsafe.redact(line)
    assert logsafe.redact('"GET /api/v1/members HTTP/1.1" 200') == '"GET /api/v1/members HTTP/1.1" 200'


def test_route_templates_are_kept_and_structured_events_are_redacted_field_by_field():
    # A request line names the route's template: it holds no token, and reads as the template.
    for template in ("/pay/{token}", "/pay/{token}/mpesa", "/hooks/daraja/stk/{token}", "/hooks/sms/delivery/{token}"):
        assert logsafe.redact(f"route={template} status=200") == f"route={template} status=200"
        assert logsafe.redact(f'{{"route": "{template}"}}') == f'{{"route": "{template}"}}'
    # Anything else in that place is a token, a look-alike too.
    assert logsafe.redact("/pay/{token}x") == "/pay/[redacted]"
    assert logsafe.redact(f"/pay/{TOKEN}") == "/pay/[redacted]"
    # structlog's events reach the record factory as dicts: redacted value by value, still a dict.
    logsafe.install()
    record = logging.getLogRecordFactory()("x", logging.INFO, __file__, 1,
                                           {"event": f"paid /pay/{TOKEN}", "route": "/pay/{token}", "n": 3}, (), None)
    assert record.msg == {"event": "paid /pay/[redacted]", "route": "/pay/{token}", "n": 3}
