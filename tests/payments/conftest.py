# The portal over HTTP with the gateway sandbox, shared by the M-Pesa and card tests.
from tests.support.live import card_live, live  # noqa: F401
