"""Settings changed for a while, the way an operator changes them: in the environment."""

from __future__ import annotations

import contextlib
import os

from portal.settings import get_settings


@contextlib.contextmanager
def setting(name: str, value: str):
    """`name=value` in the environment (and the settings read again) until the block ends."""
    saved = os.environ.get(name)
    os.environ[name] = value
    get_settings.cache_clear()
    try:
        yield get_settings()
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved
        get_settings.cache_clear()
