"""The JSON API's own rules: keys (portal/api/keys.py) and idempotent writes
(portal/api/idempotency.py). The handlers are in portal/web/api_v1.py."""
