"""Starting and stopping aiokafka's clients so that none is left behind.

A client whose ``start()`` failed (no broker, a refusal, a cancellation) still holds its connections and tasks;
aiokafka reports it as unclosed when it is collected. Every client this project starts goes through here.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Protocol, TypeVar


class Client(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


C = TypeVar("C", bound=Client)


async def started(client: C) -> C:
    """``client``, started; stopped again when starting fails or is cancelled (its error is what is raised)."""
    try:
        await client.start()
    except BaseException:
        with contextlib.suppress(Exception):
            await client.stop()
        raise
    return client


@contextlib.asynccontextmanager
async def running(client: C) -> AsyncIterator[C]:
    """``client`` started for the block and stopped after it, however it ends."""
    await started(client)
    try:
        yield client
    finally:
        await client.stop()
