"""Sending a record's body back to the SQS queue it came from.

A record names its queue by ARN (``eventSourceARN``); SQS sends to a URL,
so the URL is looked up once per queue (``GetQueueUrl`` with the queue's
name and owner) and kept for the container's life. boto3 blocks: each call
runs on an executor (the loop's default thread pool unless one is given).
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import Executor
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

__all__ = ["RequeueError", "SqsRequeue"]


class RequeueError(Exception):
    """SQS did not take the body; the message says which queue and why."""


class SqsRequeue:
    """A ``Requeue`` over a boto3 ``sqs`` client."""

    def __init__(self, client: Any, executor: Executor | None = None) -> None:
        self._client = client
        self._executor = executor
        self._urls: dict[str, str] = {}

    async def send(self, source_arn: str, body: bytes) -> None:
        try:
            url = self._urls.get(source_arn) or await self._url(source_arn)
            await self._call(self._client.send_message, QueueUrl=url, MessageBody=body.decode())
        except (ClientError, BotoCoreError) as exc:
            code = (
                str(exc.response.get("Error", {}).get("Code", "ClientError"))
                if isinstance(exc, ClientError)
                else type(exc).__name__
            )
            raise RequeueError(f"SQS did not take a record for {source_arn!r}: {code}") from exc

    async def _url(self, source_arn: str) -> str:
        parts = source_arn.split(":")
        if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sqs" or not all(parts[3:]):
            raise RequeueError(f"{source_arn!r} is not an SQS queue ARN")
        account, name = parts[4], parts[5]
        found = await self._call(
            self._client.get_queue_url, QueueName=name, QueueOwnerAWSAccountId=account
        )
        url: str = found["QueueUrl"]
        self._urls[source_arn] = url
        return url

    async def _call(self, method: Any, **arguments: Any) -> Any:
        call = functools.partial(method, **arguments)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)
