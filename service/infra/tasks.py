"""Background tasks that live as long as the app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any


@contextlib.asynccontextmanager
async def background(work: Coroutine[Any, Any, None], name: str) -> AsyncIterator[None]:
    """Run `work` while the block runs; stop it, for sure, on the way out."""
    task = asyncio.create_task(work, name=name)
    try:
        yield
    finally:
        # Cancel until it stops: on Python 3.11 asyncio.wait_for (used by redis-py)
        # swallows a cancellation that lands as its inner call completes.
        while not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=0.1)
        with contextlib.suppress(asyncio.CancelledError):
            await task
