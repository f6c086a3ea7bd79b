"""Simulated charge points: picows clients that speak just enough OCPP-J.

A charger sends a BootNotification and waits for its answer, then (in the
fleet benchmark) runs a closed loop of Heartbeats: one CALL outstanding at a
time, as OCPP-J requires, the next sent from the callback that receives the
answer. Driving the loop from callbacks rather than one coroutine per charger
keeps the load generator cheap, so that it can saturate the server on a
machine where both share two cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import resource
import time
import urllib.parse
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from picows import WSCloseCode, WSError, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

__all__ = [
    "PROTOCOLS",
    "Recorder",
    "SimulatedCharger",
    "boot_frame",
    "charger_ids",
    "close_all",
    "connect_fleet",
    "raise_open_file_limit",
]

PROTOCOLS = ("ocpp1.6", "ocpp2.0.1")
#: Seconds one charger gets to connect and have its BootNotification answered.
CONNECT_TIMEOUT = 30.0
#: Client sockets per source address (127.0.0.2, .3, ...), far below the
#: ~28,000 ephemeral ports one address has towards one server port.
SOCKETS_PER_SOURCE_ADDRESS = 1000
#: Descriptors the load generator needs besides one per charger.
SPARE_FILES = 64

_BOOT_PAYLOADS: dict[str, dict[str, Any]] = {
    "ocpp1.6": {"chargePointVendor": "BenchVendor", "chargePointModel": "BenchModel"},
    "ocpp2.0.1": {
        "reason": "PowerUp",
        "chargingStation": {"model": "BenchModel", "vendorName": "BenchVendor"},
    },
}


def charger_ids(count: int, prefix: str = "BENCH") -> list[str]:
    """Identities ``BENCH00000``, ``BENCH00001``, ...: valid, sortable, URL-safe."""
    return [f"{prefix}{n:05d}" for n in range(count)]


def boot_frame(protocol: str, message_id: str) -> bytes:
    """A BootNotification CALL that passes the schema of ``protocol``."""
    return orjson.dumps([2, message_id, "BootNotification", _BOOT_PAYLOADS[protocol]])


def raise_open_file_limit(needed: int) -> None:
    """Lift the soft descriptor limit to the hard one (a charger is a socket);
    fail before connecting anything if even the hard limit is too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and needed > hard:
        raise SystemExit(f"need {needed} open files but the hard limit is {hard}")
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@dataclass(slots=True)
class Recorder:
    """What every charger of a run reports: latencies and counted errors."""

    latencies_ns: list[int] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)


class SimulatedCharger(WSListener):
    """One charge point's client end. At most one CALL is outstanding."""

    def __init__(self, identity: str, recorder: Recorder) -> None:
        self.identity = identity
        self.transport: WSTransport | None = None
        self._recorder = recorder
        self._counter = 0
        self._pending_id: str | None = None
        self._sent_ns = 0
        self._reply: asyncio.Future[list[Any]] | None = None
        self._done: asyncio.Future[None] | None = None
        self._deadline = 0.0
        self._calls_left = 0

    # -- picows callbacks ---------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self._reply is not None and not self._reply.done():
            self._reply.set_exception(ConnectionError("closed while waiting for an answer"))
        if self._done is not None and not self._done.done():
            self._recorder.errors["closed"] += 1
            self._done.set_result(None)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is WSMsgType.TEXT:
            self._answer(frame.get_payload_as_bytes(), time.perf_counter_ns())
        elif frame.msg_type is WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    # -- one CALL, awaited ----------------------------------------------------

    def call(self, frame: bytes, message_id: str) -> asyncio.Future[list[Any]]:
        """Send a CALL; the future gets its CALLRESULT or CALLERROR array."""
        assert self.transport is not None and self._pending_id is None
        self._reply = asyncio.get_running_loop().create_future()
        self._send(frame, message_id)
        return self._reply

    async def boot(self, protocol: str) -> None:
        """Send a BootNotification, which a real charger does before anything else,
        and insist that it is Accepted."""
        reply = await self.call(boot_frame(protocol, "boot"), "boot")
        if reply[0] != 3 or not isinstance(reply[2], dict) or reply[2].get("status") != "Accepted":
            raise RuntimeError(f"{self.identity}: BootNotification answered {reply!r}")

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
        assert self._done is not None
        if self._calls_left <= 0 or time.monotonic() >= self._deadline:
            self._done.set_result(None)
            return
        self._calls_left -= 1
        self._counter += 1
        message_id = str(self._counter)
        self._send(b'[2,"%s","Heartbeat",{}]' % message_id.encode(), message_id)

    # -- plumbing -------------------------------------------------------------

    def _send(self, frame: bytes, message_id: str) -> None:
        assert self.transport is not None
        self._pending_id = message_id
        self._sent_ns = time.perf_counter_ns()
        self.transport.send(WSMsgType.TEXT, frame)

    def _answer(self, data: bytes, received_ns: int) -> None:
        expected, self._pending_id = self._pending_id, None
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError:
            message = None
        matches = (
            isinstance(message, list)
            and len(message) >= 3
            and message[0] in (3, 4)
            and message[1] == expected
        )
        if self._reply is not None:  # an awaited call (the boot)
            reply, self._reply = self._reply, None
            if matches:
                reply.set_result(message)
            else:
                reply.set_exception(RuntimeError(f"{self.identity}: unexpected frame {data!r}"))
            return
        if self._done is None or self._done.done():
            self._recorder.errors["unsolicited"] += 1
            return
        if not matches:
            self._recorder.errors["bad_reply"] += 1
            self._done.set_result(None)  # out of step with the server: stop this charger
            return
        if message[0] == 4:
            self._recorder.errors[f"callerror:{message[2]}"] += 1
        else:
            self._recorder.latencies_ns.append(received_ns - self._sent_ns)
        self._next_heartbeat()

    def abandon(self) -> None:
        """Count a heartbeat loop that did not finish in time as one timeout."""
        if self._done is not None and not self._done.done():
            self._recorder.errors["timeout"] += 1
            self._done.set_result(None)


async def connect_fleet(
    url: str,
    identities: Sequence[str],
    protocol: str,
    recorder: Recorder,
    *,
    batch: int,
) -> list[SimulatedCharger]:
    """Connect and boot every charger, ``batch`` at a time; failures are counted
    in ``recorder.errors`` and left out of the list."""
    spread = _spreads_sources(url)
    chargers: list[SimulatedCharger] = []
    for start in range(0, len(identities), batch):
        outcomes = await asyncio.gather(
            *(
                _connect_one(url, identity, protocol, recorder, start + n if spread else None)
                for n, identity in enumerate(identities[start : start + batch])
            )
        )
        chargers.extend(charger for charger in outcomes if charger is not None)
    return chargers


async def _connect_one(
    url: str, identity: str, protocol: str, recorder: Recorder, index: int | None
) -> SimulatedCharger | None:
    extra: dict[str, Any] = {}
    if index is not None:
        extra["local_addr"] = (_source_address(index), 0)
    transport: WSTransport | None = None
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            transport, listener = await ws_connect(
                lambda: SimulatedCharger(identity, recorder),
                f"{url}/{identity}",
                extra_headers={"Sec-WebSocket-Protocol": protocol},
                **extra,
            )
            assert isinstance(listener, SimulatedCharger)
            chosen = transport.response.headers.get("Sec-WebSocket-Protocol")
            if chosen != protocol:
                raise RuntimeError(f"server chose subprotocol {chosen!r}, not {protocol}")
            await listener.boot(protocol)
    except (OSError, WSError, RuntimeError, TimeoutError, ConnectionError) as exc:
        recorder.errors[f"connect:{type(exc).__name__}"] += 1
        if transport is not None:
            transport.disconnect(graceful=False)
        return None
    return listener


def _spreads_sources(url: str) -> bool:
    """Spread client sockets over 127.0.0.2+ only when the server is on 127.0.0.1
    (IPv4 loopback answers on the whole 127/8; ``localhost`` may be ::1)."""
    return urllib.parse.urlsplit(url).hostname == "127.0.0.1"


def _source_address(index: int) -> str:
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
