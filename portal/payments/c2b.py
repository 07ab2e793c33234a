"""M-Pesa Paybill (C2B): validation answers and confirmations. (Being written.)"""

from __future__ import annotations


async def validation_answer(data: dict) -> str:
    return "0"
