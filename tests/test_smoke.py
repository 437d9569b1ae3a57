from __future__ import annotations

from typing import Any


async def test_client_reaches_a_real_server(redis_client: Any) -> None:
    await redis_client.set("aiorp:smoke:{x}", "1")
    assert await redis_client.get("aiorp:smoke:{x}") == b"1"
