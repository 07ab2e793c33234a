"""Benchmarks run on demand only (`make bench`, i.e. `pytest tests/bench -m bench -s`, or
BENCH=1): a plain `pytest` does not even collect them, since they load hundreds of thousands of
rows and take minutes."""

from __future__ import annotations

import logging
import os
import re

# Thousands of requests: one log line each would bury the table.
logging.getLogger("httpx").setLevel(logging.WARNING)


def bench_enabled(config) -> bool:
    if os.environ.get("BENCH") == "1":
        return True
    markexpr = config.getoption("markexpr", default="") or ""
    return re.search(r"(?<!not )\bbench\b", markexpr) is not None


def pytest_ignore_collect(collection_path, config):
    if collection_path.name != "conftest.py" and not bench_enabled(config):
        return True
    return None
