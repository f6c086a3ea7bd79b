"""The registries ``ocppgw charge-points`` works on, behind one synchronous face.

The SQLite folder's ``SqliteRegistry`` already is one; ``DynamoDbCommands``
wraps the AWS deployment's ``DynamoDbRegistry`` (async, boto3) so that each
call runs to completion and every AWS failure becomes one ``CommandError``
line naming the table. boto3 and botocore load only when a table is named.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol, TypeVar

from processor.adapters.dynamodb_registry import DynamoDbRegistry

from .settings import DynamoDbRegistrySettings

__all__ = ["CommandError", "DynamoDbCommands", "Registry", "UsageError"]

T = TypeVar("T")


class UsageError(Exception):
    """A command's arguments or input are wrong; exits 2 with the message."""


class CommandError(Exception):
    """A command could not do its work; exits ``status`` with the message as one line."""

    def __init__(self, message: str, status: int = 1, done: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.status = status
        #: What was done before the failure (the charge points ``add`` registered).
        self.done = list(done)


class Registry(Protocol):
    """What ``charge-points`` needs of a registry: ``SqliteRegistry``'s calls."""

    def add(
        self,
        charge_point_ids: Iterable[str],
        now: datetime,
        passwords: Mapping[str, str] | None = None,
    ) -> list[str]: ...

    def set_password_hash(self, charge_point_id: str, password_hash: str | None) -> bool: ...

    def remove(self, charge_point_ids: Iterable[str]) -> list[str]: ...

    def entries(self) -> list[tuple[str, str, bool]]: ...


class DynamoDbCommands:
    """``DynamoDbRegistry`` as a ``Registry``: each call runs to completion, and AWS
    errors become one-line ``CommandError``s naming the table."""

    def __init__(self, table: DynamoDbRegistrySettings) -> None:
        self._where = f"DynamoDB table {table.table!r} in {table.region}"
        # Only this registry needs boto3, which is slow to import.
        import boto3  # noqa: PLC0415
        from botocore.config import Config  # noqa: PLC0415
        from botocore.exceptions import BotoCoreError  # noqa: PLC0415

        # A command waits for DynamoDB a few seconds, not boto3's default minutes.
        config = Config(
            connect_timeout=5, read_timeout=15, retries={"mode": "standard", "max_attempts": 3}
        )
        try:
            client = boto3.session.Session().client(
                "dynamodb",
                region_name=table.region,
                endpoint_url=table.endpoint_url,
                config=config,
            )
        except BotoCoreError as exc:  # e.g. AWS_PROFILE names no profile
            raise CommandError(f"{self._where}: {_aws_problem(exc)}") from None
        self._registry = DynamoDbRegistry(client, table.table)

    def add(
        self,
        charge_point_ids: Iterable[str],
        now: datetime,
        passwords: Mapping[str, str] | None = None,
    ) -> list[str]:
        hashes = passwords or {}

        async def add_each() -> list[str]:
            # One identity per call, so that a failure can say which were written.
            added: list[str] = []
            for cp in charge_point_ids:
                password = {cp: hashes[cp]} if cp in hashes else None
                try:
                    added += await self._aws(self._registry.add([cp], now, passwords=password))
                except CommandError as exc:
                    exc.done = added
                    raise
            return added

        return asyncio.run(add_each())

    def set_password_hash(self, charge_point_id: str, password_hash: str | None) -> bool:
        return asyncio.run(
            self._aws(self._registry.set_password_hash(charge_point_id, password_hash))
        )

    def remove(self, charge_point_ids: Iterable[str]) -> list[str]:
        return asyncio.run(self._aws(self._registry.remove(charge_point_ids)))

    def entries(self) -> list[tuple[str, str, bool]]:
        return asyncio.run(self._aws(self._registry.entries()))

    async def _aws(self, call: Awaitable[T]) -> T:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        try:
            return await call
        except (BotoCoreError, ClientError) as exc:
            raise CommandError(f"{self._where}: {_aws_problem(exc)}") from None


def _aws_problem(exc: Exception) -> str:
    """One line saying what AWS (or boto3) refused."""
    from botocore.exceptions import ClientError, NoCredentialsError  # noqa: PLC0415

    if isinstance(exc, NoCredentialsError):
        return (
            "no AWS credentials found "
            "(set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
        )
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        text = f"{error.get('Code', 'ClientError')}: {error.get('Message', '')}"
    else:
        text = str(exc)
    return " ".join(text.split()).rstrip(":")
