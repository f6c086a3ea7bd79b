"""Answers to backend commands, for the callers that wait for them."""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from processor.commands import CommandAnswer

__all__ = ["AnswerBoard"]


class AnswerBoard:
    """Futures keyed by (charge point, message id).

    An answer may arrive before its caller starts waiting, or for a command
    nobody here waits for (another process sent it): it is kept, but only the
    newest ``keep`` of those, so the board cannot grow without bound.
    """

    def __init__(self, keep: int = 10_000) -> None:
        self._keep = keep
        self._futures: OrderedDict[tuple[str, str], asyncio.Future[CommandAnswer]] = OrderedDict()

    def expect(self, charge_point_id: str, message_id: str) -> asyncio.Future[CommandAnswer]:
        key = (charge_point_id, message_id)
        future = self._futures.get(key)
        if future is None:
            future = self._futures[key] = asyncio.get_running_loop().create_future()
        return future

    def forget(self, charge_point_id: str, message_id: str) -> None:
        self._futures.pop((charge_point_id, message_id), None)

    def resolve(self, answer: CommandAnswer) -> None:
        future = self.expect(answer.charge_point_id, answer.message_id)
        if not future.done():
            future.set_result(answer)
        while len(self._futures) > self._keep:
            self._futures.popitem(last=False)
