"""One SQS invocation of the message processor: items handled per charger,
answers published per route, and which records SQS must deliver again.

Each charger's items (across every record of the invocation, in record
order and, within a record, in the order the gateway sent them) are handled
one after another, so its frames and presence keep their order and two
presence messages of one charger are never judged on the same shadow
version; different chargers run side by side.

Answers wait until every item is handled and go out per route through
``ocppj.downlink_publishes``: one publish per batch of at most
``batch_bytes``, an answer alone on its charger's own topic.

Failures keep the partial-batch contract without making neighbours repeat
or vanish:

* a single-frame or presence record that fails is redelivered by SQS;
* a batch item that fails goes back to the queue as a batch record of its
  own, with the items of the same charger after it in that record (not
  handled now, so the charger's order holds); only if that send fails is
  the record redelivered, and then none of its answers is published, so the
  redelivery answers once. An item sent back ``MAX_RESENDS`` times fails its
  record instead, so SQS's redrive (and the dead-letter queue) sees it;
* a publish that fails redelivers the records whose answers it carried (the
  handlers are idempotent on redelivery).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ocppj import downlink_publishes
from processor.adapters.routed_outbound import Publisher, PublishError
from processor.core import Processor
from processor.presence import PresenceLedger

from ._records import Item, Record, resend_body

__all__ = ["Requeue", "SqsInvocation"]

log = logging.getLogger("lambdas.handlers")


class Requeue(Protocol):
    """Sends a record's body back to the queue it came from."""

    async def send(self, source_arn: str, body: bytes) -> None:
        """Send ``body`` to the queue ``source_arn``; raise if it is not taken."""
        ...


@dataclass(frozen=True, slots=True)
class _Answer:
    charge_point_id: str
    frame: bytes
    record: int


@dataclass(slots=True)
class _Fate:
    """What becomes of one record."""

    #: SQS must deliver it again.
    failed: bool = False
    #: Items that go back to the queue, in order.
    resend: list[Item] = field(default_factory=list)
    #: Chargers whose later items in the record go back with their failed one.
    held: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class SqsInvocation:
    """The ports an invocation works through (built once per container)."""

    processor: Processor
    presence: PresenceLedger
    publisher: Publisher
    requeue: Requeue
    prefix: str
    #: Largest answer batch (bytes); 0: every answer on its own topic.
    batch_bytes: int

    async def process(self, records: Sequence[Record]) -> list[str]:
        """Handle ``records``; the message ids SQS must deliver again, in order."""
        return await _Run(self, records).run()


class _Run:
    def __init__(self, ports: SqsInvocation, records: Sequence[Record]) -> None:
        self._ports = ports
        self._records = {record.index: record for record in records}
        self._fates = {record.index: _Fate() for record in records}
        self._answers: list[_Answer] = []

    async def run(self) -> list[str]:
        chargers: dict[str, list[Item]] = {}
        for record in self._records.values():
            for item in record.items:
                chargers.setdefault(item.charge_point_id, []).append(item)
        await asyncio.gather(*(self._charger(items) for items in chargers.values()))
        await asyncio.gather(
            *(self._resend(r) for r in self._records.values() if self._fates[r.index].resend)
        )
        routes: dict[str, list[_Answer]] = {}
        for answer in self._answers:
            # A record SQS delivers again answers then: withheld, it answers once.
            if not self._fates[answer.record].failed:
                routes.setdefault(self._records[answer.record].route, []).append(answer)
        await asyncio.gather(*(self._publish(route, answers) for route, answers in routes.items()))
        return [r.message_id for r in self._records.values() if self._fates[r.index].failed]

    async def _charger(self, items: Sequence[Item]) -> None:
        for item in items:
            record, fate = self._records[item.record], self._fates[item.record]
            if fate.failed:
                continue  # the whole record comes again
            if item.charge_point_id in fate.held:
                fate.resend.append(item)
                continue
            facts: dict[str, Any] = {
                "messageId": record.message_id,
                "chargePointId": item.charge_point_id,
                "kind": item.kind,
            }
            try:
                await self._handle(item, facts)
            except Exception:
                if record.may_resend:
                    log.exception("batch item failed; it goes back to the queue", extra=facts)
                    fate.held.add(item.charge_point_id)
                    fate.resend.append(item)
                else:
                    log.exception("record failed; SQS will deliver it again", extra=facts)
                    fate.failed = True

    async def _handle(self, item: Item, facts: dict[str, Any]) -> None:
        if item.presence is None:
            answer = await self._ports.processor.handle(
                item.charge_point_id, item.kind, item.payload
            )
            if answer is not None:
                self._answers.append(_Answer(item.charge_point_id, answer, item.record))
            return
        presence = item.presence
        facts.update(connected=presence.connected, route=presence.route, at=presence.at)
        if await self._ports.presence.record(item.charge_point_id, presence):
            log.info("presence recorded", extra=facts)
        else:
            log.info("presence ignored: the record is newer or the same", extra=facts)

    async def _resend(self, record: Record) -> None:
        fate = self._fates[record.index]
        facts = {
            "messageId": record.message_id,
            "route": record.route,
            "items": len(fate.resend),
            "chargePointIds": sorted(fate.held),
        }
        try:
            await self._ports.requeue.send(record.source_arn, resend_body(record, fate.resend))
        except Exception:
            log.exception("re-send failed; SQS will deliver the record again", extra=facts)
            fate.failed = True
            return
        log.warning("batch items sent back to the queue", extra=facts)

    async def _publish(self, route: str, answers: Sequence[_Answer]) -> None:
        ports = self._ports
        frames = [(answer.charge_point_id, answer.frame) for answer in answers]
        try:
            publishes = downlink_publishes(ports.prefix, route, frames, ports.batch_bytes)
        except ValueError as exc:  # the records were read with these topics in mind
            log.error(
                "answers dropped: they make no topic",
                extra={"route": route, "answers": len(answers), "reason": str(exc)},
            )
            return
        start = 0
        # One route's publishes in order: a charger's answers keep theirs.
        for topic, payload, count in publishes:
            chunk, start = answers[start : start + count], start + count
            try:
                await ports.publisher.publish(topic, payload)
            except PublishError as exc:
                records = sorted({answer.record for answer in chunk})
                for index in records:
                    self._fates[index].failed = True
                log.warning(
                    "answers not published; SQS will deliver their records again",
                    extra={
                        "route": route,
                        "answers": count,
                        "messageIds": [self._records[i].message_id for i in records],
                        "error": str(exc),
                    },
                )
                continue
            log.debug("answers published", extra={"route": route, "answers": count})
