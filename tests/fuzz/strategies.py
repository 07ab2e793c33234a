"""What the fuzz sends: the names of every form field and query parameter the portal reads (found
in its source and templates, so a new field is fuzzed without touching this file), and values
meant to break parsers (NUL bytes, digits that are not ASCII, numbers no column can hold, odd
dates, very long and non-Latin text) mixed with values that pass, so requests also get deep."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]

# The ways the portal reads a named input: request/form .get("x"), forms._text(form, "x"),
# paging.param(params, "x"), `for k in ("a", "b")` tuples of field names, FromQuery arguments,
# data["x"], and the name="x" / field("x") of the templates.
_READS = [
    r'(?:\.get|_text|param|whole_number)\(\s*(?:\w+,\s*)?"([a-z_][a-z0-9_]*)"',
    r'(\w+): FromQuery',
    r'data\["(\w+)"\]',
]


def field_names() -> list[str]:
    names: set[str] = set()
    for path in (ROOT / "portal").rglob("*.py"):
        if "sandbox" in path.parts:
            continue
        text = path.read_text()
        for pattern in _READS:
            names |= set(re.findall(pattern, text))
        for group in re.findall(r"for \w+ in \(([^)]*)\)", text):
            names |= set(re.findall(r'"([a-z_][a-z0-9_]*)"', group))
    for path in (ROOT / "templates").rglob("*.html"):
        text = path.read_text()
        names |= set(re.findall(r'name="([a-z_][a-z0-9_]*)"', text))
        names |= set(re.findall(r"""field\(\s*['"]([a-z_][a-z0-9_]*)['"]""", text))
    names.discard("_csrf_token")  # the fuzzing client sends the real one
    return sorted(names)


NASTY = [
    "", " ", "\x00", "a\x00b", "%00", "²", "١٢", "٣", "①", "𝟗", "0", "1", "-1", "-0", "+1", "00001",
    "2147483647", "2147483648", "-2147483649", "9223372036854775808", "99999999999999999999",
    "99999999999", "9999999999.99", "1e30", "1E3", "NaN", "Infinity", "-inf", "0.001", "1,000", "3 000",
    "KES 3000", "0x10", "9999-12-31", "0001-01-01", "1900-01-01", "2026-02-30", "2026-13-01",
    "2026-11-30", "31/12/2026", "2026-11-30T10:00:00", "on", "true", "false", "[]", "{}", "null",
    "cash", "bank", "cheque", "mpesa", "card", "front_desk", "manager", "admin", "sms", "email", "both",
    "day", "week", "month", "7d", "30d", "90d", "ytd", "completed", "failed", "pending", "cancelled",
    "0712345678", "254700000001", "+254 712 345 678", "Ng'ang'a", "Wanjikũ", "<script>x</script>",
    "'; SELECT 1; --", "=HYPERLINK(\"x\")", "\u202e", "\ufeff", "🏋️", "日本語", "a" * 300, "9" * 400,
    "x" * 5000, "\r\n", "\t",
]

# Text that UTF-8 can carry (lone surrogates cannot be sent at all).
_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=200)


def values(known: list[str]) -> st.SearchStrategy[str]:
    """One value for any field: a nasty one, a real id or token, a number, a date, free text."""
    return st.one_of(
        st.sampled_from(NASTY),
        st.sampled_from(known or ["1"]),
        st.integers(min_value=-(2**70), max_value=2**70).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
        st.dates().map(lambda d: d.isoformat()),
        _text,
    )


def path_segment(known: list[str]) -> st.SearchStrategy[str]:
    """A path parameter, URL-quoted: mostly real ids and tokens, else anything."""
    raw = st.one_of(st.sampled_from(known), st.sampled_from(known), values(known).filter(lambda v: v.strip()))
    return raw.map(lambda v: quote(v, safe=""))


def fields(names: list[str], known: list[str]) -> st.SearchStrategy[dict]:
    """Any subset of the fields, each with a value."""
    value = values(known)
    return st.fixed_dictionaries({}, optional={name: value for name in names})
