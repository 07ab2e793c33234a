"""Reading the portal's log lines back (portal.lib.logs writes them): readable or JSON."""

from __future__ import annotations

import json
import re

_TEXT_LINE = re.compile(r"^(?P<timestamp>\S+) (?P<level>[A-Z]+) +(?P<logger>[\w.]+): (?P<event>\S+)(?P<rest>.*)$")
_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def parse(text: str, log_format: str) -> list[dict]:
    """Every line as a dict of its fields. JSON: every line must be one object. Text: lines that
    do not start like a log line (a traceback's, a banner's) are skipped."""
    events = []
    for line in text.splitlines():
        if log_format == "json":
            events.append(json.loads(line))
            continue
        m = _TEXT_LINE.match(line)
        if not m:
            continue
        event = {k: m.group(k) for k in ("timestamp", "level", "logger", "event")}
        for key, value in _FIELD.findall(m.group("rest")):
            event[key] = _unquote(value)
        events.append(event)
    return events


def _unquote(value: str) -> str:
    if not value.startswith('"'):
        return value
    try:
        return json.loads(value)
    except ValueError:  # a control character inside: kept as written
        return value[1:-1]


def requests_in(events: list[dict]) -> list[dict]:
    return [e for e in events if e.get("logger") == "portal.access" and e.get("event") == "request"]


def jobs_in(events: list[dict], function: str | None = None) -> list[dict]:
    return [e for e in events if e.get("logger") == "portal.jobs" and e.get("event") == "job"
            and (function is None or e.get("job") == function)]
