"""The peer: validate-and-forward as a team would write it with FastStream (pydantic validation, no
transactions, no signatures), reading the same out topic and writing the same in topic as the relay."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from faststream import FastStream
from faststream.kafka import KafkaBroker

from launchrelay.contract.messages import PlannedLaunch


def build(args: argparse.Namespace) -> FastStream:
    broker = KafkaBroker(args.bootstrap)

    @broker.subscriber(args.source, group_id=args.group, auto_offset_reset="earliest")
    @broker.publisher(args.sink)
    async def forward(body: dict[str, Any]) -> PlannedLaunch:
        # FastStream has decoded the JSON; validate it with the same model (lax, as a team's model would be)
        return PlannedLaunch.model_validate(body, strict=False)

    app = FastStream(broker)

    @app.after_startup
    async def ready() -> None:
        print("ready", flush=True)

    return app


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--source", required=True)
    p.add_argument("--sink", required=True)
    p.add_argument("--group", required=True)
    asyncio.run(build(p.parse_args()).run())
