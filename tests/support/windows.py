"""Rate limits count in fixed windows of wall-clock time (portal.lib.ratelimit): a test that
counts up to a limit starts far enough from a window's end that its requests share one window."""

import asyncio
import time


async def clear_of_window_end(window_seconds: int, margin: float) -> None:
    """Wait, if need be, until the current window has at least `margin` seconds left."""
    left = window_seconds - time.time() % window_seconds
    if left < margin:
        await asyncio.sleep(left + 0.2)
