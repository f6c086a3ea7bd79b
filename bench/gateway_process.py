"""The system under test: ``ocppgw dev`` in a subprocess of its own.

A separate process keeps the server's CPU time and memory apart from the
load generator's, so ``/proc/<pid>`` tells exactly what the gateway spent.
Charge points are registered with the real CLI before the server starts, the
way an operator would, and the server is always stopped on the way out.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

__all__ = ["LOOPBACK", "GatewayProcess", "embedded_gateway", "health", "listen_overflows"]

LOOPBACK = "127.0.0.1"
#: Identities per ``ocppgw charge-points add`` call: keeps argv far below ARG_MAX.
REGISTER_CHUNK = 1000
#: Seconds the server gets to answer ``/health`` after it was started.
START_TIMEOUT = 30.0
#: Seconds the server gets to exit after SIGTERM (it drains for up to 5 s).
STOP_TIMEOUT = 10.0
#: Lines of the server's log shown when it fails to start.
LOG_TAIL = 20


@dataclass(frozen=True, slots=True)
class GatewayProcess:
    """A running ``ocppgw dev`` and what the benchmarks read about it."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    #: Where its management API listens (``ocppgw dev`` and ``worker``), if any.
    management_port: int | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"ws://{LOOPBACK}:{self.port}"

    def cpu_seconds(self) -> float:
        """User plus system CPU time of every thread of the server so far."""
        return read_cpu_seconds(self.pid)

    def rss_kb(self) -> int:
        """Resident set size of the server now, in KiB."""
        return read_rss_kb(self.pid)

    def log_lines(self) -> list[str]:
        """What the server wrote to stderr (warnings and worse, at the level we set)."""
        return self.log_path.read_text(errors="replace").splitlines()


def read_cpu_seconds(pid: int) -> float:
    """utime + stime from ``/proc/<pid>/stat``, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces and parentheses: split after it.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of stat
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def read_rss_kb(pid: int) -> int:
    """``VmRSS`` from ``/proc/<pid>/status``, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"process {pid} reports no VmRSS (has it exited?)")


def listen_overflows() -> int | None:
    """The kernel's count of connections dropped because an accept queue was full.

    System-wide (``TcpExt: ListenOverflows``), so it speaks for the gateway only
    on a machine that runs nothing else that listens; None if unavailable.
    """
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            counters = dict(zip(names.split()[1:], values.split()[1:], strict=True))
            return int(counters["ListenOverflows"]) if "ListenOverflows" in counters else None
    return None


def free_port() -> int:
    """A loopback port nobody listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def health(port: int, timeout: float = 1.0) -> dict[str, object]:
    """The server's ``GET /health`` answer; raises if it does not answer 200."""
    url = f"http://{LOOPBACK}:{port}/health"
    with urllib.request.urlopen(url, timeout=timeout) as response:
        if response.status != 200:
            raise RuntimeError(f"/health answered {response.status}")
        answer: dict[str, object] = orjson.loads(response.read())
        return answer


#: A closed-loop load test sends far faster than any real charger: the
#: per-charger flood limit must not throttle it.
UNLIMITED = {"OCPP_RATE_LIMIT": "1000000", "OCPP_RATE_BURST": "1000000"}


@contextlib.contextmanager
def embedded_gateway(
    charge_point_ids: Sequence[str],
    *,
    unlimited: bool = True,
    settings: Mapping[str, str] | None = None,
) -> Iterator[GatewayProcess]:
    """Register ``charge_point_ids`` in a fresh data folder, run the server on a
    free loopback port until the block exits, then stop it (SIGTERM, then kill).
    ``unlimited`` lifts the per-charger flood limit; without it the server runs
    with its defaults, as an operator would; ``settings`` are more of its
    environment variables."""
    with tempfile.TemporaryDirectory(prefix="ocppgw-bench-") as folder:
        data_dir = Path(folder) / "data"
        register(charge_point_ids, data_dir)
        port, management_port = free_port(), free_port()
        log_path = Path(folder) / "server.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                _ocppgw(
                    "dev", "--host", LOOPBACK, "--port", str(port), "--data-dir", str(data_dir)
                ),
                env={
                    **os.environ,
                    "OCPP_LOG_LEVEL": "WARNING",
                    "OCPP_MANAGEMENT_PORT": str(management_port),
                    **(UNLIMITED if unlimited else {}),
                    **(settings or {}),
                },
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        try:
            gateway = GatewayProcess(process, port, log_path, management_port)
            _wait_until_healthy(gateway)
            yield gateway
        finally:
            stop(process)


def register(charge_point_ids: Sequence[str], data_dir: Path) -> None:
    """``ocppgw charge-points add`` in chunks, as an operator would."""
    for start in range(0, len(charge_point_ids), REGISTER_CHUNK):
        chunk = charge_point_ids[start : start + REGISTER_CHUNK]
        subprocess.run(
            _ocppgw("charge-points", "add", "--data-dir", str(data_dir), *chunk),
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    """Ask the server to shut down; kill it if it has not exited in time."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _ocppgw(*args: str) -> list[str]:
    # ``python -m ocppgw`` rather than the console script: the same interpreter
    # as ours, and the pid we get is the server's own, not a wrapper's.
    return [sys.executable, "-m", "ocppgw", *args]


def _wait_until_healthy(gateway: GatewayProcess) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if gateway.process.poll() is not None:
            raise RuntimeError(
                f"the server exited with status {gateway.process.returncode}:\n"
                + "\n".join(gateway.log_lines()[-LOG_TAIL:])
            )
        with contextlib.suppress(OSError, urllib.error.URLError):
            health(gateway.port)
            return
        time.sleep(0.1)
    raise RuntimeError(f"the server did not answer /health within {START_TIMEOUT:.0f} s")
