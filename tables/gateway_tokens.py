"""Access tokens of outbound gateways, shared by every web and worker process.

One row per gateway credential set. `expires_at` is when the gateway says the token dies;
`updated_at` is when it was fetched (their difference is the token's lifetime, from which the
client works out how early to refresh). Rows are replaced under a PostgreSQL advisory lock so
that several processes needing a token at once fetch one, not one each
(portal/gateways/daraja.py: TokenStore).
"""

from piccolo.columns import Text, Timestamptz, Varchar
from piccolo.table import Table


class GatewayToken(Table, tablename="gateway_token"):
    gateway = Varchar(length=100, unique=True,
                      help_text="Token scope, e.g. daraja:<hash of base URL and consumer key>")
    token = Text(secret=True)
    expires_at = Timestamptz()
    updated_at = Timestamptz()
