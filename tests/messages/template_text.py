"""The text a person reads in a template, found without rendering it.

A template is cut into Jinja tags (`{{ … }}`, `{% … %}`, `{# … #}`) and raw text; the raw text
is read as HTML: what is between tags (outside <script>, <style>, <textarea> and comments) is
shown, and so are a few attributes (title, placeholder, aria-label, alt). A *run* is a stretch
of shown text and `{{ … }}` expressions with no tag or block between them: one sentence, as
a translator would want it. tests/messages/test_languages.py fails on a run whose own text
(not its expressions) has a letter in it outside `_()`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
SHOWN_ATTRIBUTES = ("title", "placeholder", "aria-label", "alt")
ATTRIBUTE = re.compile(r"""(?<![\w-])(%s)=(["'])(.*?)\2""" % "|".join(SHOWN_ATTRIBUTES), re.S)
ENTITY = re.compile(r"&#?\w+;")
RAW_ELEMENTS = ("script", "style", "textarea")
TRANSLATED = re.compile(r"^\{\{-?\s*(_|gettext|ngettext|pgettext|npgettext)\(")


@dataclass
class Piece:
    kind: str  # "text" (shown), "var" ({{ }}), "block" ({% %} or {# #}), "markup" (HTML tags etc.)
    start: int
    end: int
    text: str


@dataclass
class Run:
    pieces: list = field(default_factory=list)

    @property
    def start(self) -> int:
        return self.pieces[0].start

    @property
    def end(self) -> int:
        return self.pieces[-1].end

    def own_text(self) -> str:
        return "".join(p.text for p in self.pieces if p.kind == "text")


def has_words(text: str) -> bool:
    return bool(re.search(r"[A-Za-z]", ENTITY.sub("", text)))


def pieces(source: str) -> list[Piece]:
    """The template as shown text, expressions, blocks and markup, in order."""
    out: list[Piece] = []
    state = "text"  # text | tag | comment | raw:<element>
    quote = ""
    state_after = "text"
    pos = 0
    tokens = []
    for m in JINJA.finditer(source):
        if m.start() > pos:
            tokens.append(("raw", pos, m.start(), source[pos:m.start()]))
        tokens.append(("var" if m.group().startswith("{{") else "block", m.start(), m.end(), m.group()))
        pos = m.end()
    if pos < len(source):
        tokens.append(("raw", pos, len(source), source[pos:]))

    for kind, start, end, text in tokens:
        if kind != "raw":
            out.append(Piece(kind if state == "text" else ("markup" if kind == "var" else kind), start, end, text))
            continue
        i = 0
        while i < len(text):
            if state == "text":
                j = text.find("<", i)
                j = len(text) if j < 0 else j
                if j > i:
                    out.append(Piece("text", start + i, start + j, text[i:j]))
                if j == len(text):
                    break
                if text.startswith("<!--", j):
                    state = "comment"
                else:
                    state = "tag"
                    tag = re.match(r"<\s*(\w+)", text[j:])
                    raw_name = tag.group(1).lower() if tag else ""
                    state_after = f"raw:{raw_name}" if raw_name in RAW_ELEMENTS else "text"
                i = j
                continue
            if state == "tag":
                k = i
                while k < len(text):
                    c = text[k]
                    if quote:
                        if c == quote:
                            quote = ""
                    elif c in "\"'":
                        quote = c
                    elif c == ">":
                        break
                    k += 1
                if k < len(text):
                    out.append(Piece("markup", start + i, start + k + 1, text[i:k + 1]))
                    state = state_after
                    i = k + 1
                else:
                    out.append(Piece("markup", start + i, start + k, text[i:]))
                    i = k
                continue
            if state == "comment":
                k = text.find("-->", i)
                if k < 0:
                    out.append(Piece("markup", start + i, start + len(text), text[i:]))
                    break
                out.append(Piece("markup", start + i, start + k + 3, text[i:k + 3]))
                state = "text"
                i = k + 3
                continue
            # raw element: up to its closing tag
            name = state.split(":", 1)[1]
            k = text.lower().find(f"</{name}", i)
            if k < 0:
                out.append(Piece("markup", start + i, start + len(text), text[i:]))
                break
            out.append(Piece("markup", start + i, start + k, text[i:k]))
            state = "text"
            i = k
    return out


def runs(source: str, *, per_line: bool = False) -> list[Run]:
    """Stretches of shown text and expressions between tags and blocks; `per_line` (plain-text
    templates) also ends a run at each line's end."""
    result: list[Run] = []
    current = Run()

    def close():
        nonlocal current
        if current.pieces:
            result.append(current)
        current = Run()

    for p in pieces(source):
        if p.kind == "text":
            if per_line and "\n" in p.text:
                offset = p.start
                for line in p.text.splitlines(keepends=True):
                    current.pieces.append(Piece("text", offset, offset + len(line), line))
                    offset += len(line)
                    if line.endswith("\n"):
                        close()
                continue
            current.pieces.append(p)
        elif p.kind == "var":
            current.pieces.append(p)
        else:
            close()
    close()
    return result


def untranslated(source: str, *, per_line: bool = False) -> list[str]:
    """Shown text with words in it that does not go through gettext."""
    found = []
    for run in runs(source, per_line=per_line):
        text = run.own_text()
        if has_words(text):
            found.append(" ".join(text.split()))
    for m, text in shown_attributes(source):
        found.append(f"{m.group(1)}={' '.join(text.split())!r}")
    return found


def shown_attributes(source: str):
    """(match, its own text) of each shown attribute (not inside a Jinja tag) with words in its
    value outside `{{ … }}` and `{% … %}`."""
    inside = [m.span() for m in JINJA.finditer(source)]
    for m in ATTRIBUTE.finditer(source):
        if any(s < m.start() < e for s, e in inside):
            continue
        own = JINJA.sub("", m.group(3))
        if has_words(own):
            yield m, own
