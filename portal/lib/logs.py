"""The process's logging, set up once: structured lines (structlog) through stdlib logging.

Every line, ours or a library's (uvicorn, SAQ, httpx, piccolo), goes through the one root handler
made here, so every line gets the same shape: readable `key=value` lines by default, one JSON
object per line with LOG_FORMAT=json. Whatever is bound with `bind` (the request id and the staff
member during a request, the job and the request that queued it in the worker) is on every line
written meanwhile, a library's too.

Secrets: structlog's loggers write stdlib log records, so portal.lib.logsafe's record factory
redacts them as any other record; the formatter runs the same `logsafe.redact` over the finished
fields (values bound in context, a library's `extra`) before rendering. One rule, applied where a
line is made and again where it is written.

Libraries' INFO chatter (SAQ's line per job step, WeasyPrint's per PDF step, httpx's per request)
is shown at DEBUG only: at INFO the console shows the banner, one line per request and one per
job. Logging is configured here, once per process, not by Litestar's LoggingConfig, which starts
a queue-listener thread for every app made and never stops it for apps run without a lifespan.
"""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Any

import structlog

from portal.lib import logsafe

FORMATS = ("text", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

# Loggers whose INFO lines are per-step chatter: shown at DEBUG.
CHATTY = ("saq", "weasyprint", "fontTools", "httpx", "httpcore")

bind = structlog.contextvars.bind_contextvars
reset = structlog.contextvars.reset_contextvars
bound = structlog.contextvars.get_contextvars


def get_logger(name: str):
    return structlog.stdlib.get_logger(name)


class _Threshold(logging.Filter):
    """The level a line must reach, after the chatty libraries' INFO lines are demoted to DEBUG."""

    def __init__(self, level: int):
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and record.name.split(".", 1)[0] in CHATTY:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return record.levelno >= self.level


def _foreign_exception(logger, method, event: dict) -> dict:
    # logsafe's factory renders (and redacts) a record's traceback into exc_text at once.
    record = event.get("_record")
    if record is not None and record.exc_text and "exception" not in event:
        event["exception"] = record.exc_text
    return event


def _drop_color(logger, method, event: dict) -> dict:
    event.pop("color_message", None)  # uvicorn's copy of its message with terminal colour codes
    return event


def _redact(logger, method, event: dict) -> dict:
    return {key: _redact_value(value) for key, value in event.items()}


def _redact_value(value: Any) -> Any:
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value(v) for v in value]
    return logsafe.redact(value if isinstance(value, str) else str(value))


# The readable line: time, level, logger and event first, then the fields as key=value.
_FIRST = ("timestamp", "level", "logger", "event")


class _TextRenderer:
    def __init__(self):
        self._fields = structlog.processors.LogfmtRenderer(
            key_order=["request_id", "job", "job_key", "method", "route", "status", "duration_ms"],
            drop_missing=True, bool_as_flag=False)

    def __call__(self, logger, method, event: dict) -> str:
        event = dict(event)
        exception = event.pop("exception", None)
        timestamp, level, name, message = (event.pop(k, "") for k in _FIRST)
        head = f"{timestamp} {str(level).upper():<7} {name}: {message}"
        rest = self._fields(logger, method, event)
        line = f"{head} {rest}" if rest else head
        return f"{line}\n{exception}" if exception else line


def _json_renderer():
    render = structlog.processors.JSONRenderer()

    def first_things_first(logger, method, event: dict) -> str:
        ordered = {k: event[k] for k in _FIRST if k in event}
        ordered.update((k, v) for k, v in event.items() if k not in ordered)
        return render(logger, method, ordered)

    return first_things_first


_shared = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]

# structlog's loggers hand their events to stdlib logging, whether or not `configure` has run (a
# test, or the app served by another runner): never structlog's own printer, which would write
# every event at every level past the levels and the redaction. A level stdlib would drop is
# dropped first, before any other work.
structlog.configure(
    processors=[structlog.stdlib.filter_by_level, *_shared, structlog.processors.StackInfoRenderer(),
                structlog.processors.format_exc_info, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
    cache_logger_on_first_use=True,
)

_handler: logging.Handler | None = None


def configure(log_format: str = "text", level: str = "INFO", stream=None) -> logging.Handler:
    """Route every log line of this process through one handler of the given format and level
    (again: the previous one is replaced). Returns the handler (tests read what it writes)."""
    global _handler
    if log_format not in FORMATS:
        raise ValueError(f"log format {log_format!r}: expected one of {FORMATS}")
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"log level {level!r}: expected one of {LEVELS}")
    logsafe.install()
    renderer = _json_renderer() if log_format == "json" else _TextRenderer()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared, structlog.stdlib.ExtraAdder(), _drop_color, _foreign_exception],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, _redact, renderer],
    ))
    handler.addFilter(_Threshold(numeric))
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    for old in list(root.handlers):  # basicConfig's, or a library's: one line per event, ours
        if isinstance(old, logging.StreamHandler) and old.stream in (sys.stderr, sys.stdout):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    _handler = handler
    logging.captureWarnings(True)  # warnings (piccolo's connection errors) pass the redaction too
    # The embedded server's library asks for a per-user runtime directory at import and falls
    # back to /tmp by itself when there is none (a systemd service, a container): nothing to act on.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    return handler


def unconfigure(handler: logging.Handler) -> None:
    """Take a handler made by `configure` off again (tests)."""
    global _handler
    logging.getLogger().removeHandler(handler)
    if _handler is handler:
        _handler = None


def configure_from(settings) -> logging.Handler:
    return configure(settings.log_format, settings.log_level)
