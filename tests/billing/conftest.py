# Pay links are tried over HTTP with the gateway sandbox, as a member's phone would.
from tests.support.live import card_live, live  # noqa: F401
