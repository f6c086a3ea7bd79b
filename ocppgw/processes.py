"""Running a server process until a signal: the embedded default, the
production gateway (one process per worker, on one port), and helpers they
share."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
from types import FrameType
from typing import TYPE_CHECKING

import uvloop

from .gateway_service import GatewaySettings, run_gateway
from .logs import configure_logging

if TYPE_CHECKING:
    from .worker import WorkerSettings

__all__ = ["run_gateways", "run_workers", "stop_on_signals"]

log = logging.getLogger("ocppgw")


def stop_on_signals() -> asyncio.Event:
    """An event set by the first SIGINT or SIGTERM; a second one exits at once."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.warning("second signal: exiting at once", extra={"signal": signum})
            os._exit(128 + signum)
        log.info("shutting down", extra={"signal": signum})
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    return stop


def run_gateways(settings: GatewaySettings) -> int:
    """Run ``settings.workers`` gateway processes on one port until a signal."""
    if settings.workers == 1:
        _gateway_process(settings)
        return 0
    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(
            target=_gateway_process, args=(settings.for_worker(n),), name=f"gateway-{n}"
        )
        for n in range(settings.workers)
    ]
    for child in children:
        child.start()

    def forward(signum: int, frame: FrameType | None) -> None:
        # Ctrl-C reaches the whole process group by itself; SIGTERM (ECS
        # stopping the task) reaches only us and must be passed on.
        if signum == signal.SIGTERM:
            for child in children:
                if child.pid is not None and child.is_alive():
                    os.kill(child.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for child in children:
        child.join()
    return 0 if all(child.exitcode == 0 for child in children) else 1


def _gateway_process(settings: GatewaySettings) -> None:
    configure_logging(settings.log_level)
    uvloop.run(_serve_gateway(settings))


async def _serve_gateway(settings: GatewaySettings) -> None:
    stop = stop_on_signals()
    async with run_gateway(settings) as gateway:
        log.info(
            "ready: charge points connect to port %d",
            gateway.port,
            extra={"gatewayId": settings.mqtt.gateway_id, "pid": os.getpid()},
        )
        await stop.wait()


def run_workers(settings: WorkerSettings) -> None:
    """Run one processor worker until a signal (start more processes to scale:
    the shared subscription splits the load between them)."""
    uvloop.run(_serve_worker(settings))


async def _serve_worker(settings: WorkerSettings) -> None:
    # Here rather than at the top: a spawned gateway process imports this
    # module, and must not load the processor with the worker.
    from .worker import run_worker  # noqa: PLC0415

    stop = stop_on_signals()
    async with run_worker(settings) as system:
        # "ready" only once the broker delivers to this worker: whoever waits
        # for the line (an operator, a test, the benchmark) can then publish.
        subscribed = asyncio.ensure_future(system.worker.wait_subscribed(None))
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait((subscribed, stopping), return_when=asyncio.FIRST_COMPLETED)
            if subscribed.done():
                log.info(
                    "ready: processing %s/in/+/+/+ in group %s",
                    settings.topic_prefix,
                    settings.mqtt.group,
                    extra={"managementPort": system.management_port, "pid": os.getpid()},
                )
            await stopping
        finally:
            subscribed.cancel()
            stopping.cancel()
