# The portal over HTTP with the gateway sandbox.
from tests.support.live import card_live, live  # noqa: F401
