"""The gym's logo: GYM_LOGO's file, or a badge with the gym's initials when none is given.

Pages fetch it from /brand/logo; PDFs embed it as a data: URI (WeasyPrint fetches nothing from
outside static/)."""

from __future__ import annotations

import base64
import html
from functools import lru_cache

from portal.settings import get_settings, read_logo_file


def initials(name: str) -> str:
    words = [w for w in name.replace("'s", "").split() if w[:1].isalnum()]
    return "".join(w[0] for w in words[:3]).upper() or "G"


def badge_svg(name: str) -> bytes:
    text = html.escape(initials(name))
    size = 44 if len(text) < 3 else 34
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 120 120" role="img" aria-label="{html.escape(name)}">'
            f'<rect width="120" height="120" rx="28" fill="#0b7a55"/>'
            f'<path d="M18 96c22-10 62-10 84 0" stroke="#f4b942" stroke-width="7" fill="none" stroke-linecap="round"/>'
            f'<text x="60" y="70" text-anchor="middle" font-family="Helvetica, Arial, sans-serif" font-weight="700" '
            f'font-size="{size}" fill="#fff">{text}</text></svg>').encode()


@lru_cache(maxsize=4)
def _load(path: str, name: str) -> tuple[bytes, str]:
    return read_logo_file(path) if path else (badge_svg(name), "image/svg+xml")


def logo() -> tuple[bytes, str]:
    """(bytes, media type) of the gym's logo."""
    settings = get_settings()
    return _load(settings.gym_logo, settings.gym_name)


def logo_data_uri() -> str:
    data, kind = logo()
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"
