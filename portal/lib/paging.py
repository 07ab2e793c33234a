"""Filtered, paged lists: the filters read from the query string and back into it (the pager's
links), their SQL conditions, and the page asked for (its offset, how many pages there are).

Used with the `pager` macro of templates/_pager.html, whose `link_for(n)` is the list's
`query_string(page=n)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

from portal.lib.forms import INT_MAX, whole

# A longer page number is a typo or a probe, not a page: it would only make an enormous OFFSET.
MAX_PAGE_DIGITS = 6


def param(params, name: str) -> str:
    """A query parameter as typed, trimmed ('' when absent)."""
    return (params.get(name) or "").strip()


def whole_number(params, name: str, max_digits: int | None = None) -> int | None:
    """A parameter that must be a whole number the database can hold (an id), else None."""
    return whole(param(params, name), INT_MAX if max_digits is None else min(INT_MAX, 10**max_digits - 1))


def page_number(params) -> int:
    """The `page` parameter: 1 when absent, not a number, 0 or absurdly large."""
    return max(1, whole_number(params, "page", MAX_PAGE_DIGITS) or 1)


def query_string(values: dict, omit: tuple = ("", None)) -> str:
    """A list's filters as a query string, leaving out the empty ones so links stay short."""
    return urlencode({k: v for k, v in values.items() if v not in omit})


class Where:
    """SQL conditions joined by AND, with their arguments in order (Piccolo's {} placeholders)."""

    def __init__(self, first: str = "TRUE") -> None:
        self.clauses = [first]
        self.args: list = []

    def add(self, clause: str, *args) -> None:
        self.clauses.append(clause)
        self.args.extend(args)

    def equal(self, column: str, value) -> None:
        """`column = value`, when a value is asked for (an empty filter matches everything)."""
        if value:
            self.add(f"{column} = {{}}", value)

    def sql(self) -> tuple[str, list]:
        return " AND ".join(self.clauses), self.args


@dataclass(kw_only=True)
class Filters:
    """The filters of a list, read from its query string (request.query_params) and written back
    into its pager's links. Every list has a page and may be narrowed to one member (a member's
    page links to their list); a subclass reads its own filters in `read` and gives them back,
    in their query string's order, in `values`. What is wrong goes in `errors` (name -> message)."""

    page: int = 1
    member: int | None = None
    errors: dict = field(default_factory=dict)

    @classmethod
    def parse(cls, params):
        filters = cls(page=page_number(params), member=whole_number(params, "member"))
        filters.read(params)
        return filters

    def read(self, params) -> None:
        raise NotImplementedError

    def values(self) -> dict:
        raise NotImplementedError

    def query_string(self, **override) -> str:
        return query_string({**self.values(), "member": self.member or "", **override})


@dataclass(kw_only=True)
class Page:
    """Page `page` (from 1) of a list of `count` rows, `size` rows a page, and its `rows`."""

    page: int
    size: int
    count: int = 0
    rows: list[dict] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return max(1, -(-self.count // self.size))

    @property
    def offset(self) -> int:
        return (max(self.page, 1) - 1) * self.size
