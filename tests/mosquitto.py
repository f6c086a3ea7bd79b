"""A private Mosquitto for the tests that need a real MQTT broker.

Each broker listens on a free loopback port of its own, with a config and a
log in the test's tmp folder, so tests never share a broker or its state. A
test may stop it and start it again on the same port (a broker outage)::

    broker = Mosquitto(tmp_path / "broker", persistence=True)
    broker.start()
    ...
    broker.restart()  # what persistent sessions queued survives
    broker.stop()

The methods block (for a few milliseconds): async tests call them through
``asyncio.to_thread`` when the event loop must keep running meanwhile. The
``mosquitto`` fixture of ``tests/conftest.py`` gives a test a running one,
and skips the test, saying why, when no Mosquitto is installed.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import IO, Self

__all__ = ["MISSING", "Mosquitto", "executable", "free_port"]

#: Why a test that needs a broker is skipped on a machine without one.
MISSING = "needs the mosquitto binary (apt-get install mosquitto / brew install mosquitto)"

#: Where distributions install it when it is not on the PATH (sbin often is not).
_SEARCH = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto")

#: Bound on starting and stopping a broker (seconds).
_DEADLINE = 10.0


def executable() -> str | None:
    """The Mosquitto binary of this machine, or None."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((path for path in _SEARCH if os.access(path, os.X_OK)), None)


def free_port() -> int:
    """A loopback port nobody listens on (yet)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Mosquitto:
    """One Mosquitto process on a fixed loopback port, stopped and started at will.

    ``persistence`` keeps persistent sessions and their queued messages across
    a restart, as a production broker does; ``extra`` is appended to the
    config (another listener, TLS files).
    """

    def __init__(
        self,
        folder: Path,
        *,
        persistence: bool = False,
        extra: str = "",
        binary: str | None = None,
    ) -> None:
        found = binary or executable()
        if found is None:
            raise RuntimeError(MISSING)
        self.binary = found
        self.folder = folder
        self.port = free_port()
        self.config = folder / "mosquitto.conf"
        self.log_path = folder / "mosquitto.log"
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true"]
        if persistence:
            lines += [
                "persistence true",
                f"persistence_location {folder}/",
                # Saved on shutdown only: a restart keeps everything, and no
                # timer writes files behind a test's back.
                "autosave_interval 0",
            ]
        else:
            lines.append("persistence false")
        if os.geteuid() == 0:
            # As root Mosquitto would switch to its own user, which cannot
            # read the test's private folder (or may not exist).
            lines.append(f"user {getpass.getuser()}")
        folder.mkdir(parents=True, exist_ok=True)
        self.config.write_text("\n".join(lines) + "\n" + extra)
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the broker and return once it accepts connections."""
        if self.running:
            return
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [self.binary, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        deadline = time.monotonic() + _DEADLINE
        while self._process.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                time.sleep(0.01)
            else:
                return
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on {self.port}:\n{self.log()}")

    def stop(self) -> None:
        """Stop the broker (SIGTERM: persistence is saved); a no-op when stopped."""
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(_DEADLINE)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(_DEADLINE)
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        """Stop and start again on the same port."""
        self.stop()
        self.start()

    def log(self) -> str:
        """What the broker logged so far (for a failure's message)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
