"""Publishing frames through AWS IoT Core's data plane.

Frames go out with QoS 1: IoT Core then holds them until the gateway's
connection acknowledges, and the gateway tolerates a duplicate (OCPP-J
answers are matched by message id). boto3 blocks, so every publish runs on
an executor (the loop's default thread pool unless one is given).
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import Executor
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .routed_outbound import PublishError

__all__ = ["IotDataPublisher"]


class IotDataPublisher:
    """A ``Publisher`` over a boto3 ``iot-data`` client."""

    def __init__(self, client: Any, executor: Executor | None = None) -> None:
        self._client = client
        self._executor = executor

    async def publish(self, topic: str, payload: bytes) -> None:
        publish = functools.partial(self._client.publish, topic=topic, qos=1, payload=payload)
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, publish)
        except (ClientError, BotoCoreError) as exc:
            code = (
                str(exc.response.get("Error", {}).get("Code", "ClientError"))
                if isinstance(exc, ClientError)
                else type(exc).__name__
            )
            raise PublishError(f"IoT Core did not take a frame for {topic!r}: {code}") from exc
