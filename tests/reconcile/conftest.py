# The portal over HTTP with the gateway sandbox (as the M-Pesa tests use it).
from tests.support.live import live  # noqa: F401
