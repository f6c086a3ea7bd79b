"""Simulated charge points: picows clients that speak enough OCPP-J to load a backend.

A charger connects with one subprotocol, sends a BootNotification and
insists on ``Accepted``. Then it runs one of two behaviours:

* **closed loop**: Heartbeats as fast as the server answers, one CALL
  outstanding as OCPP-J requires, the next sent from the callback that
  receives the answer. Driving it from callbacks rather than one coroutine
  per charger keeps the load generator cheap enough to saturate a server
  that shares its two cores.
* **standard mix** (``run_mix``, one coroutine per charger): a Heartbeat
  every ``heartbeat_s``; charging sessions, each opened with a
  StatusNotification and a StartTransaction (1.6) or TransactionEvent
  ``Started`` (2.0.1), a meter reading every ``meter_s`` while charging, and
  closed with the matching stop and a StatusNotification. Session and idle
  lengths are drawn from exponential distributions whose means make
  ``charging_fraction`` of the fleet charge at any time.

In every behaviour the charger answers the backend's remote start and stop
(1.6 ``RemoteStart/StopTransaction``, 2.0.1 ``RequestStart/StopTransaction``)
as a real one would: ``Accepted`` when it can comply, then it starts or ends a
session (in the standard mix), ``Rejected`` otherwise.

Every CALL, answer, error and latency goes into a ``Recorder`` that can cross a
process boundary and be merged with the other load generators' recorders.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
import random
import resource
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from picows import WSCloseCode, WSError, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from . import messages
from .histogram import LatencyHistogram
from .messages import PROTOCOLS

__all__ = [
    "PROTOCOLS",
    "MixPlan",
    "Recorder",
    "SimulatedCharger",
    "charger_ids",
    "close_all",
    "connect_one",
    "protocol_of",
    "raise_open_file_limit",
    "source_address",
]

#: Seconds one charger gets to connect and have its BootNotification answered.
CONNECT_TIMEOUT = 30.0
#: Seconds a CALL of the standard mix waits for its answer (OCPP's usual default).
CALL_TIMEOUT = 30.0
#: Client sockets per source address (127.0.0.2, .3, ...), far below the
#: ~28,000 ephemeral ports one address has towards one server port.
SOCKETS_PER_SOURCE_ADDRESS = 1000
#: Descriptors the load generator needs besides one per charger.
SPARE_FILES = 64

#: The longest pause between two BootNotifications of a refused charger.
BOOT_RETRY_MAX_S = 10.0
_jitter = random.Random(0)

_REMOTE_START = frozenset({"RemoteStartTransaction", "RequestStartTransaction"})
_REMOTE_STOP = frozenset({"RemoteStopTransaction", "RequestStopTransaction"})


def charger_ids(count: int, prefix: str = "BENCH", start: int = 0) -> list[str]:
    """Identities ``BENCH00000``, ``BENCH00001``, ...: valid, sortable, URL-safe."""
    return [f"{prefix}{n:05d}" for n in range(start, start + count)]


def protocol_of(index: int, ratio_201: float) -> str:
    """Charger ``index``'s version: exactly ``ratio_201`` of any prefix of the
    fleet (to within one charger) speaks 2.0.1, spread evenly through it."""
    chosen = math.floor((index + 1) * ratio_201) > math.floor(index * ratio_201)
    return messages.V201 if chosen else messages.V16


def raise_open_file_limit(needed: int) -> None:
    """Lift the soft descriptor limit to the hard one (a charger is a socket);
    fail before connecting anything if even the hard limit is too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and needed > hard:
        raise SystemExit(f"need {needed} open files but the hard limit is {hard}")
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@dataclass(frozen=True, slots=True)
class MixPlan:
    """The standard fleet mix of DESIGN.md: heartbeat every 300 s, 30 % of the
    fleet charging with a meter reading every 60 s, a StatusNotification at
    each session's start and end."""

    heartbeat_s: float = 300.0
    meter_s: float = 60.0
    charging_fraction: float = 0.3
    session_s: float = 3600.0

    @property
    def idle_s(self) -> float:
        """Mean time between sessions that keeps ``charging_fraction`` charging."""
        return self.session_s * (1.0 - self.charging_fraction) / self.charging_fraction

    def uplink_rate(self) -> float:
        """CALLs per charger per second the mix sends in its steady state."""
        sessions = self.charging_fraction / self.session_s  # starts (= ends) per s
        return 1 / self.heartbeat_s + self.charging_fraction / self.meter_s + 4 * sessions


@dataclass(slots=True)
class Recorder:
    """What the chargers of one load generator saw: CALLs sent and answered by
    action, errors by kind, latency, and the backend's CALLs they answered."""

    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    #: BootNotifications apart: they measure connecting, not the load.
    boot_latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    sent: Counter[str] = field(default_factory=Counter)
    answered: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    server_calls: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        return {
            "latency": self.latency.to_json(),
            "boot_latency": self.boot_latency.to_json(),
            "sent": dict(self.sent),
            "answered": dict(self.answered),
            "failed": dict(self.failed),
            "errors": dict(self.errors),
            "server_calls": dict(self.server_calls),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Recorder:
        return cls(
            LatencyHistogram.from_json(data["latency"]),
            LatencyHistogram.from_json(data["boot_latency"]),
            Counter(data["sent"]),
            Counter(data["answered"]),
            Counter(data["failed"]),
            Counter(data["errors"]),
            Counter(data["server_calls"]),
        )

    def merge(self, other: Recorder) -> None:
        self.latency.merge(other.latency)
        self.boot_latency.merge(other.boot_latency)
        for mine, theirs in (
            (self.sent, other.sent),
            (self.answered, other.answered),
            (self.failed, other.failed),
            (self.errors, other.errors),
            (self.server_calls, other.server_calls),
        ):
            mine.update(theirs)


@dataclass(slots=True)
class _Schedule:
    """When a charger of the standard mix next heartbeats, starts or ends a
    session, and sends a meter reading (``loop.time()`` values)."""

    heartbeat: float
    session: float
    meter: float = math.inf

    def charging(self, now: float, plan: MixPlan, rng: random.Random) -> None:
        self.session = now + rng.expovariate(1 / plan.session_s)
        self.meter = now + plan.meter_s

    def idle(self, now: float, plan: MixPlan, rng: random.Random) -> None:
        self.session = now + rng.expovariate(1 / plan.idle_s)
        self.meter = math.inf


@dataclass(slots=True)
class _Pending:
    message_id: str
    action: str
    sent_ns: int
    reply: asyncio.Future[list[Any]] | None


class SimulatedCharger(WSListener):
    """One charge point's client end. At most one of its CALLs is outstanding."""

    def __init__(self, identity: str, protocol: str, recorder: Recorder) -> None:
        self.identity = identity
        self.protocol = protocol
        self.transport: WSTransport | None = None
        self._recorder = recorder
        self._counter = 0
        self._pending: _Pending | None = None
        # The closed loop.
        self._done: asyncio.Future[None] | None = None
        self._deadline = 0.0
        self._calls_left = 0
        # Charging state, which remote start and stop change.
        self.transaction_id: str | int | None = None
        self._meter_wh = 0
        self._seq_no = 0
        self._remote_start: tuple[str, int | None] | None = None
        self._remote_stop = False
        self._wake: asyncio.Future[None] | None = None

    @property
    def charging(self) -> bool:
        return self.transaction_id is not None

    # -- picows callbacks ---------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.transport = None
        pending, self._pending = self._pending, None
        if pending is not None:  # a CALL lost with the connection (a boot's: connect_one)
            if pending.action != "BootNotification":
                self._recorder.errors["closed"] += 1
            if pending.reply is not None and not pending.reply.done():
                pending.reply.set_exception(ConnectionError("closed while waiting for an answer"))
        if self._done is not None and not self._done.done():
            self._done.set_result(None)
        self._wake_up()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is WSMsgType.TEXT:
            self._on_text(frame.get_payload_as_bytes(), time.perf_counter_ns())
        elif frame.msg_type is WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    # -- CALLs, awaited -------------------------------------------------------

    def call(self, action: str, payload: dict[str, Any]) -> asyncio.Future[list[Any]]:
        """Send a CALL; the future gets its CALLRESULT or CALLERROR array, or
        ConnectionError if the connection closes first."""
        if self.transport is None:
            raise ConnectionError("call() on a charger that is not connected")
        if self._pending is not None:
            raise RuntimeError(f"call() while {self._pending.action} is still outstanding")
        reply: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._counter += 1
        message_id = str(self._counter)
        self._send(orjson.dumps([2, message_id, action, payload]), message_id, action, reply)
        return reply

    async def boot(self, retries: int = 0) -> None:
        """Send a BootNotification, which a real charger does before anything else,
        and insist that it is Accepted. As a real charger does, one that is
        refused (a CALLERROR, or not ``Accepted``) tries again on the same
        connection, up to ``retries`` times, after 1, 2, 4, ... 10 s (±20 %)."""
        for attempt in range(retries + 1):
            reply = await self.call(*messages.boot(self.protocol))
            if (
                reply[0] == 3
                and isinstance(reply[2], dict)
                and reply[2].get("status") == "Accepted"
            ):
                return
            if attempt == retries:
                raise RuntimeError(f"{self.identity}: BootNotification answered {reply!r}")
            delay = min(BOOT_RETRY_MAX_S, 2.0**attempt) * _jitter.uniform(0.8, 1.2)
            await asyncio.sleep(delay)

    async def exchange(self, action: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """One CALL of the standard mix: its CALLRESULT payload, or None (counted)
        after a CALLERROR, a timeout or a closed connection."""
        if self.transport is None or self._pending is not None:
            return None
        reply = self.call(action, payload)
        try:
            async with asyncio.timeout(CALL_TIMEOUT):
                message = await reply
        except TimeoutError:
            self._pending = None  # a late answer will count as unsolicited
            self._recorder.errors["timeout"] += 1
            return None
        except ConnectionError:
            return None
        return message[2] if message[0] == 3 and isinstance(message[2], dict) else None

    # -- the closed heartbeat loop ----------------------------------------------

    def start_heartbeats(self, deadline: float, max_calls: int) -> asyncio.Future[None]:
        """Heartbeat until ``time.monotonic()`` passes ``deadline`` or ``max_calls``
        were answered; the future resolves when the last answer is in."""
        self._done = asyncio.get_running_loop().create_future()
        self._deadline = deadline
        self._calls_left = max_calls
        self._next_heartbeat()
        return self._done

    def _next_heartbeat(self) -> None:
        if self._done is None:
            raise RuntimeError("_next_heartbeat() before start_heartbeats()")
        if self._calls_left <= 0 or time.monotonic() >= self._deadline or self.transport is None:
            self._done.set_result(None)
            return
        self._calls_left -= 1
        self._counter += 1
        message_id = str(self._counter)
        self._send(b'[2,"%s","Heartbeat",{}]' % message_id.encode(), message_id, "Heartbeat", None)

    def abandon(self) -> None:
        """Count a heartbeat loop that did not finish in time as one timeout."""
        if self._done is not None and not self._done.done():
            self._recorder.errors["timeout"] += 1
            self._done.set_result(None)

    # -- the standard mix -----------------------------------------------------

    async def run_mix(self, until: float, plan: MixPlan, rng: random.Random) -> None:
        """Behave like a charger of the standard mix until ``loop.time()`` reaches
        ``until`` (or the connection closes). Phases are random, so a fleet's
        messages spread evenly over time instead of arriving in waves."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        plugged_in = rng.random() < plan.charging_fraction  # then it starts within a minute
        schedule = _Schedule(
            heartbeat=start + rng.uniform(0, plan.heartbeat_s),
            session=start
            + (rng.uniform(0, plan.meter_s) if plugged_in else rng.expovariate(1 / plan.idle_s)),
        )
        while self.transport is not None:
            if await self._obey_remote(loop.time(), schedule, plan, rng):
                continue
            due = min(schedule.heartbeat, schedule.session, schedule.meter)
            if not await self._sleep_until(min(due, until)):
                continue  # woken by a remote command (or the connection closed)
            now = loop.time()
            if now >= until:
                return
            await self._next_event(now, schedule, plan, rng)

    async def _obey_remote(
        self, now: float, schedule: _Schedule, plan: MixPlan, rng: random.Random
    ) -> bool:
        """Start or end the session a remote command asked for; False if none did."""
        if self._remote_start is not None:
            id_tag, remote_start_id = self._remote_start
            self._remote_start = None
            if not self.charging and await self._start_session(id_tag, remote_start_id):
                schedule.charging(now, plan, rng)
            return True
        if self._remote_stop:
            self._remote_stop = False
            if self.charging:
                await self._end_session(remote=True)
                schedule.idle(now, plan, rng)
            return True
        return False

    async def _next_event(
        self, now: float, schedule: _Schedule, plan: MixPlan, rng: random.Random
    ) -> None:
        if now >= schedule.heartbeat:
            await self.exchange("Heartbeat", {})
            schedule.heartbeat += plan.heartbeat_s
        elif now >= schedule.session:
            if self.charging:
                await self._end_session(remote=False)
                schedule.idle(now, plan, rng)
            else:
                await self._start_session(f"TAG{self.identity}", None)
                schedule.charging(now, plan, rng)
        elif now >= schedule.meter:
            await self._meter_reading(rng)
            schedule.meter += plan.meter_s

    async def _sleep_until(self, when: float) -> bool:
        """Sleep until ``when``; False if woken earlier."""
        self._wake = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout_at(when):
                await self._wake
        except TimeoutError:
            return True
        finally:
            self._wake = None
        return False

    def _wake_up(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def _start_session(self, id_tag: str, remote_start_id: int | None) -> bool:
        self._seq_no = 0
        own_id = f"{self.identity}-{self._counter + 1}"
        await self.exchange(*messages.status(self.protocol, charging=True))
        answer = await self.exchange(
            *messages.session_start(self.protocol, id_tag, self._meter_wh, own_id, remote_start_id)
        )
        if answer is None:
            return False
        if self.protocol == messages.V16:
            self.transaction_id = answer.get("transactionId")
        else:
            self.transaction_id = own_id
        return self.charging

    async def _meter_reading(self, rng: random.Random) -> None:
        if self.transaction_id is None:
            raise RuntimeError("meter reading outside a transaction")
        power_w = rng.uniform(3_000.0, 11_000.0)
        self._meter_wh += int(power_w / 60)
        self._seq_no += 1
        await self.exchange(
            *messages.meter_reading(
                self.protocol, self.transaction_id, self._meter_wh, power_w, self._seq_no
            )
        )

    async def _end_session(self, *, remote: bool) -> None:
        if self.transaction_id is None:
            raise RuntimeError("ending a session with no transaction")
        self._seq_no += 1
        transaction_id, self.transaction_id = self.transaction_id, None
        await self.exchange(
            *messages.session_end(
                self.protocol, transaction_id, self._meter_wh, self._seq_no, remote
            )
        )
        await self.exchange(*messages.status(self.protocol, charging=False))

    # -- the backend's CALLs ---------------------------------------------------

    def _on_server_call(self, message_id: str, action: str, payload: Any) -> None:
        self._recorder.server_calls[action] += 1
        fields = payload if isinstance(payload, dict) else {}
        if action in _REMOTE_START:
            accepted = not self.charging and self._remote_start is None
            if accepted:
                id_token = fields.get("idTag") or fields.get("idToken", {}).get("idToken", "")
                self._remote_start = (str(id_token), fields.get("remoteStartId"))
        elif action in _REMOTE_STOP:
            asked = fields.get("transactionId")
            accepted = self.charging and str(asked) == str(self.transaction_id)
            self._remote_stop = self._remote_stop or accepted
        else:
            self._reply(
                orjson.dumps([4, message_id, "NotImplemented", f"{action} is not simulated", {}])
            )
            return
        status = "Accepted" if accepted else "Rejected"
        self._reply(orjson.dumps([3, message_id, {"status": status}]))
        self._wake_up()

    def _reply(self, frame: bytes) -> None:
        if self.transport is not None:
            self.transport.send(WSMsgType.TEXT, frame)

    # -- plumbing -------------------------------------------------------------

    def _send(
        self,
        frame: bytes,
        message_id: str,
        action: str,
        reply: asyncio.Future[list[Any]] | None,
    ) -> None:
        if self.transport is None:
            raise ConnectionError("sending on a charger that is not connected")
        self._pending = _Pending(message_id, action, time.perf_counter_ns(), reply)
        self._recorder.sent[action] += 1
        self.transport.send(WSMsgType.TEXT, frame)

    def _on_text(self, data: bytes, received_ns: int) -> None:
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError:
            message = None
        if not isinstance(message, list) or len(message) < 3 or message[0] not in (2, 3, 4):
            self._recorder.errors["bad_frame"] += 1
            return
        if message[0] == 2:
            if len(message) >= 4 and isinstance(message[1], str) and isinstance(message[2], str):
                self._on_server_call(message[1], message[2], message[3])
            else:
                self._recorder.errors["bad_frame"] += 1
            return
        self._on_answer(message, received_ns)

    def _on_answer(self, message: list[Any], received_ns: int) -> None:
        """Settle the outstanding CALL with its CALLRESULT or CALLERROR."""
        pending = self._pending
        if pending is None or message[1] != pending.message_id:
            self._recorder.errors["unsolicited"] += 1
            return
        self._pending = None
        if pending.action == "BootNotification":
            self._recorder.boot_latency.record(received_ns - pending.sent_ns)
        else:
            self._recorder.latency.record(received_ns - pending.sent_ns)
        if message[0] == 3:
            self._recorder.answered[pending.action] += 1
        else:
            self._recorder.failed[pending.action] += 1
            self._recorder.errors[f"callerror:{message[2]}"] += 1
        if pending.reply is not None:
            if not pending.reply.done():
                pending.reply.set_result(message)
        elif self._done is not None and not self._done.done():
            self._next_heartbeat()

    def unanswered(self) -> int:
        """1 if a CALL of this charger is still waiting for its answer."""
        return 0 if self._pending is None else 1


async def connect_one(
    url: str,
    identity: str,
    protocol: str,
    recorder: Recorder,
    *,
    source: str | None = None,
    factory: Callable[[], SimulatedCharger] | None = None,
    boot_retries: int = 0,
) -> SimulatedCharger | None:
    """Connect and boot one charger (from ``source`` if given), retrying a
    refused boot ``boot_retries`` times; a failure is counted in
    ``recorder.errors`` as ``connect:<reason>`` and gives None."""
    extra: dict[str, Any] = {} if source is None else {"local_addr": (source, 0)}
    transport: WSTransport | None = None
    make = factory or (lambda: SimulatedCharger(identity, protocol, recorder))
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT + boot_retries * BOOT_RETRY_MAX_S):
            transport, listener = await ws_connect(
                make,
                f"{url}/{identity}",
                extra_headers={"Sec-WebSocket-Protocol": protocol},
                **extra,
            )
            if not isinstance(listener, SimulatedCharger):  # closed as the upgrade completed
                raise ConnectionError("connection lost during the upgrade")
            chosen = transport.response.headers.get("Sec-WebSocket-Protocol")
            if chosen != protocol:
                raise RuntimeError(f"server chose subprotocol {chosen!r}, not {protocol}")
            await listener.boot(boot_retries)
    except (OSError, WSError, RuntimeError, TimeoutError, ConnectionError) as exc:
        recorder.errors[f"connect:{_reason(exc)}"] += 1
        if transport is not None:
            transport.disconnect(graceful=False)
        return None
    return listener


def _reason(exc: BaseException) -> str:
    """A short, stable name for why a connection failed (an HTTP status if any)."""
    text = str(exc)
    for status in ("401", "403", "404", "429", "500", "503"):
        if f" {status} " in f" {text} ":
            return f"http{status}"
    return type(exc).__name__


def spreads_sources(url: str) -> bool:
    """Spread client sockets over 127.0.0.2+ only when the server is on 127.0.0.1
    (IPv4 loopback answers on the whole 127/8; ``localhost`` may be ::1)."""
    return urllib.parse.urlsplit(url).hostname == "127.0.0.1"


def source_address(index: int) -> str:
    """The source address of the fleet's ``index``-th socket: 127.0.0.2 for the
    first thousand, then 127.0.0.3, ..."""
    return str(ipaddress.ip_address("127.0.0.2") + index // SOCKETS_PER_SOURCE_ADDRESS)


async def close_all(chargers: Sequence[SimulatedCharger], timeout: float = 5.0) -> None:
    """Close every connection with 1000 and wait (bounded) until they are gone."""
    transports = [c.transport for c in chargers if c.transport is not None]
    for transport in transports:
        transport.send_close(WSCloseCode.OK)
        transport.disconnect()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(t.wait_disconnected() for t in transports))
