"""The systems a scenario runs against, each in processes of its own.

* ``embedded``: ``ocppgw dev`` (gateway and processor in one process, SQLite
  state), the newcomer's default and the cheapest complete system.
* ``pipeline``: production's shape on one machine: a private Mosquitto,
  ``ocppgw worker`` processes on a shared subscription, and ``ocppgw gateway``
  relaying the chargers' frames over its MQTT pool, all sharing one SQLite
  folder.
* ``echo``: ``bench.echo_server``, a bare picows + uvloop echo, the baseline
  of the throughput scenario.

Every process is watched by name (``gateway``, ``broker``, ``worker-0``, ...)
so that a scenario can say which one spent what.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from processor.adapters import DATABASE_FILE

from . import compare_echo, compare_mqtt
from .gateway_process import LOOPBACK, GatewayProcess, embedded_gateway, free_port, stop

__all__ = ["System", "echo", "embedded", "pipeline"]

#: The pipeline gateway's settings beyond the defaults: quiet logs and the
#: topic prefix and id the workers expect. MQTT quotas stay as in production
#: (100 publishes/s and 100 in flight per pooled connection).
PIPELINE_GATEWAY = {
    "OCPP_LOG_LEVEL": "WARNING",
    "OCPP_TOPIC_PREFIX": compare_mqtt.PREFIX,
    "OCPP_GATEWAY_ID": compare_mqtt.GATEWAY_ID,
}


@dataclass(frozen=True, slots=True)
class System:
    """A running system under test."""

    kind: str
    gateway: GatewayProcess
    #: Every process of the system by name; ``gateway`` is always there.
    watched: dict[str, int] = field(default_factory=dict)
    management_url: str | None = None
    #: The pipeline's broker port, SQLite state file and log files (by
    #: process), for ``bench.aws_counts``; None or empty elsewhere.
    broker_port: int | None = None
    database: Path | None = None
    log_paths: dict[str, Path] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.gateway.url


@contextlib.contextmanager
def embedded(
    identities: Sequence[str], *, unlimited: bool, settings: Mapping[str, str] | None = None
) -> Iterator[System]:
    with embedded_gateway(identities, unlimited=unlimited, settings=settings) as gateway:
        yield System(
            "embedded",
            gateway,
            {"gateway": gateway.pid},
            f"http://{LOOPBACK}:{gateway.management_port}",
        )


@contextlib.contextmanager
def echo() -> Iterator[System]:
    with compare_echo.echo_server() as server:
        yield System("echo", server, {"gateway": server.pid})


@contextlib.contextmanager
def pipeline(
    identities: Sequence[str],
    *,
    workers: int,
    unlimited: bool,
    settings: Mapping[str, str] | None = None,
    batch_bytes: int | None = None,
) -> Iterator[System]:
    """Broker, then the workers (subscribed before any presence is published:
    they ask the broker for no retained messages), then the gateway, with
    ``settings`` added to its environment. ``batch_bytes`` sets
    ``OCPP_MQTT_BATCH_BYTES`` for the gateway and the workers alike (None:
    their default; 0: the one-per-frame design, whose workers also wrote
    every reading of a transaction to the shadow)."""
    batching = {} if batch_bytes is None else {"OCPP_MQTT_BATCH_BYTES": str(batch_bytes)}
    processing = dict(batching)
    if batch_bytes == 0:
        processing["OCPP_SHADOW_TRANSACTION_READINGS"] = "true"
    gateway_settings = (
        PIPELINE_GATEWAY
        | (compare_mqtt.GATEWAY_ENV if unlimited else {})
        | batching
        | dict(settings or {})
    )
    with (
        tempfile.TemporaryDirectory(prefix="ocppgw-pipeline-") as name,
        contextlib.ExitStack() as stack,
    ):
        folder = Path(name)
        broker = stack.enter_context(compare_mqtt.mosquitto(folder))
        watched = {"broker": broker.pid}
        logs: dict[str, Path] = {}
        apis = []
        for n in range(workers):
            process = stack.enter_context(worker(n, broker.port, folder, processing))
            watched[f"worker-{n}"] = process.pid
            logs[f"worker-{n}"] = process.log_path
            apis.append(process.management_port)
        gateway = stack.enter_context(
            compare_mqtt.mqtt_gateway(identities, broker.port, folder, settings=gateway_settings)
        )
        yield System(
            "pipeline",
            gateway,
            {"gateway": gateway.pid, **watched},
            f"http://{LOOPBACK}:{apis[0]}",
            broker_port=broker.port,
            database=folder / "data" / DATABASE_FILE,
            log_paths={"gateway": gateway.log_path, **logs},
        )


@contextlib.contextmanager
def worker(
    n: int, broker_port: int, folder: Path, settings: Mapping[str, str]
) -> Iterator[GatewayProcess]:
    """``ocppgw worker`` number ``n`` until the block exits; yields once its
    management API listens (it has subscribed by then)."""
    port = free_port()
    log_path = folder / f"worker-{n}.log"
    env = {
        **os.environ,
        "MQTT_URL": f"mqtt://{LOOPBACK}:{broker_port}",
        "OCPP_TOPIC_PREFIX": compare_mqtt.PREFIX,
        "OCPP_WORKER_ID": f"bench-worker-{n}",
        "OCPP_MANAGEMENT_PORT": str(port),
        "OCPP_LOG_LEVEL": "WARNING",
        **settings,
    }
    command = [sys.executable, "-m", "ocppgw", "worker", "--data-dir", str(folder / "data")]
    process = compare_mqtt.spawn(command, log_path, env=env)
    try:
        worker = GatewayProcess(process, port, log_path, port)
        compare_mqtt.wait_until_listening(worker, f"worker {n}")
        yield worker
    finally:
        stop(process)
