"""A bare picows + uvloop WebSocket server that answers every CALL at once.

    .venv/bin/python -m bench.echo_server --port 9000 [--host 127.0.0.1]

The baseline of ``bench.compare_echo``: what a round trip costs in transport
alone (uvloop's loop and TCP transports, picows framing, the kernel's
loopback) when the "processing" is the least an OCPP echo can do. It accepts
any path and the ``ocpp1.6`` (or ``ocpp2.0.1``) subprotocol, and answers each
text frame with ``[3,"<its message id>",{}]``; the simulated chargers of
``bench/charger.py`` accept nothing less than a CALLRESULT with their CALL's
id. The one exception is a BootNotification, answered ``Accepted`` because
the chargers insist on it; that costs one string comparison per frame.

How the id is found: ``orjson.loads`` of the frame, ``orjson.dumps`` of the
answer. A byte slice between the first two quotes was measured too and is no
cheaper in CPython (about 0.37 µs against 0.31 µs per frame on the machine of
bench/README.md, function call included), and it would mis-answer an id with
an escaped quote; either is a few per cent of a round trip's cost.

Like the gateway it uses uvloop's own transports (``use_aiofastnet=False``),
a 2048-byte first read buffer, a 128 KiB frame limit and a listen backlog of
4096; unlike the gateway it has no admission step, no bus, no processor, no
keepalive sweep and no per-frame bookkeeping or logging. Fragmented messages
are not reassembled (the simulated chargers never fragment). SIGTERM or
SIGINT stops it. Loopback addresses only.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import signal
import sys
from collections.abc import Sequence

import orjson
import uvloop
from picows import (
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
    ws_create_server,
)

__all__ = ["EchoListener", "answer", "main"]

#: Subprotocols accepted, in order of preference.
SUBPROTOCOLS = ("ocpp1.6", "ocpp2.0.1")
#: As the gateway: picows' floor for the first read buffer of a connection.
READ_BUFFER_INIT_SIZE = 2048
#: As the gateway's default ``max_message_size``.
MAX_FRAME_SIZE = 128 * 1024
#: As the gateway's ``accept_backlog``: a fleet connecting in bursts is not dropped.
ACCEPT_BACKLOG = 4096
#: The payload of the answer to a BootNotification (valid in 1.6 and 2.0.1).
_BOOT_ACCEPTED = {"status": "Accepted", "currentTime": "2026-01-01T00:00:00Z", "interval": 300}
_EMPTY: dict[str, object] = {}


def answer(frame: bytes) -> bytes | None:
    """The CALLRESULT for a CALL frame; None if the frame is not a JSON array
    of at least three elements (such frames go unanswered)."""
    try:
        message = orjson.loads(frame)
        message_id = message[1]
        action = message[2]
    except (orjson.JSONDecodeError, IndexError, KeyError, TypeError):
        return None
    if action == "BootNotification":
        return orjson.dumps([3, message_id, _BOOT_ACCEPTED])
    return orjson.dumps([3, message_id, _EMPTY])


class EchoListener(WSListener):
    """One connection: each text frame is answered from ``on_ws_frame`` itself."""

    __slots__ = ()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is WSMsgType.TEXT:
            reply = answer(frame.get_payload_as_bytes())
            if reply is not None:
                transport.send(WSMsgType.TEXT, reply)
        elif kind is WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
        # PING is answered by picows (enable_auto_pong); anything else is ignored.


def _upgrade(request: WSUpgradeRequest) -> WSUpgradeResponseWithListener:
    """Any path; the first offered subprotocol that we accept, if any."""
    offered = [
        name.strip()
        for value in request.headers.getall("Sec-WebSocket-Protocol", ())
        for name in value.split(",")
    ]
    chosen = next((name for name in offered if name in SUBPROTOCOLS), None)
    headers = {"Sec-WebSocket-Protocol": chosen} if chosen else None
    return WSUpgradeResponseWithListener(
        WSUpgradeResponse.create_101_response(headers), EchoListener()
    )


async def serve(host: str, port: int) -> None:
    """Listen until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server = await ws_create_server(
        _upgrade,
        host,
        port,
        read_buffer_init_size=READ_BUFFER_INIT_SIZE,
        max_frame_size=MAX_FRAME_SIZE,
        use_aiofastnet=False,
        backlog=ACCEPT_BACKLOG,
    )
    try:
        await stop.wait()
    finally:
        server.close()
        await server.wait_closed()


def _loopback(text: str) -> str:
    try:
        if ipaddress.ip_address(text).is_loopback:
            return text
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{text} is not a loopback address")


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a TCP port number")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.echo_server", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--port", type=_port, required=True)
    parser.add_argument("--host", type=_loopback, default="127.0.0.1")
    args = parser.parse_args(argv)
    uvloop.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
