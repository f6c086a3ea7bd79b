"""Build the processor's Lambda package: its source and its dependencies for arm64.

The package is a folder (Pulumi zips it): ``ocppj/`` and ``processor/`` from
this repository, and the processor's runtime dependencies as ``pip`` installs
them for the Lambda runtime's platform (manylinux aarch64, CPython 3.12),
wheels only, so it builds on any machine without Docker or an arm64 host.
Version ranges come from ``pyproject.toml``, the one place they are pinned.

A build is cached under ``infra/.build/`` by a digest of everything that goes
into it; an unchanged tree costs nothing on the next ``pulumi up``. Given a
``wheelhouse`` (a folder of wheels), pip installs from it alone, offline.

Run it alone with ``python -m infra.lambda_package [DEST]``.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LambdaTarget", "build", "requirements", "LAMBDA_TARGET"]

REPOSITORY = Path(__file__).resolve().parent.parent
#: The packages the Lambda handlers import (``lambdas.handlers`` and below).
SOURCES = ("ocppj", "processor", "lambdas")
#: The distributions of ``pyproject.toml`` they need at run time. Not gmqtt,
#: aiohttp, picows or uvloop: those serve the gateway and the local worker.
DISTRIBUTIONS = ("orjson", "ocpp", "jsonschema-rs", "boto3")


@dataclass(frozen=True, slots=True)
class LambdaTarget:
    python_version: str
    #: ``x86_64`` or ``aarch64``.
    machine: str
    #: The newest glibc of the runtime's OS (Amazon Linux 2023: 2.34).
    glibc: tuple[int, int] = (2, 34)

    @classmethod
    def local(cls) -> LambdaTarget:
        """This machine's Python on x86-64 Linux: a package that can run here
        (the tests and ``bench.lambda_footprint`` run the handlers from it)."""
        return cls(f"{sys.version_info.major}.{sys.version_info.minor}", "x86_64")

    @property
    def runtime(self) -> str:
        return f"python{self.python_version}"

    @property
    def platforms(self) -> list[str]:
        """The wheel platform tags the runtime can load, newest first.

        pip takes explicit ``--platform`` tags literally, so every manylinux
        level the OS supports is listed: wheels move to newer levels over time
        (jsonschema-rs ships only ``manylinux_2_28`` for aarch64).
        """
        major, newest = self.glibc
        return [f"manylinux_{major}_{minor}_{self.machine}" for minor in range(newest, 16, -1)]


#: The runtime and architecture of every function (``arm64``: Graviton).
LAMBDA_TARGET = LambdaTarget(python_version="3.12", machine="aarch64")


def requirements(pyproject: Path = REPOSITORY / "pyproject.toml") -> list[str]:
    """The Lambda's requirement lines, with the ranges ``pyproject.toml`` pins."""
    declared = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    by_name = {_name(line): line for line in declared}
    missing = [name for name in DISTRIBUTIONS if name not in by_name]
    if missing:
        raise LookupError(f"pyproject.toml does not declare {', '.join(missing)}")
    return [by_name[name] for name in DISTRIBUTIONS]


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    return (match.group(0) if match else requirement).lower().replace("_", "-")


def build(
    cache: Path = REPOSITORY / "infra" / ".build",
    target: LambdaTarget = LAMBDA_TARGET,
    repository: Path = REPOSITORY,
    wheelhouse: Path | None = None,
) -> Path:
    """The package folder for ``target``, built unless the cache has it.

    Dependencies come from the package index, or from ``wheelhouse`` only
    (``pip --no-index --find-links``) when it is given.
    """
    lines = requirements(repository / "pyproject.toml")
    digest = _digest(repository, lines, target, wheelhouse)
    folder = cache / f"processor-{target.machine}-py{target.python_version}-{digest[:16]}"
    if (folder / ".complete").exists():
        return folder
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        _pip_install(partial, lines, target, wheelhouse)
        for package in SOURCES:
            shutil.copytree(
                repository / package,
                partial / package,
                ignore=shutil.ignore_patterns("__pycache__"),
            )
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    (partial / ".complete").write_text(digest + "\n", encoding="ascii")
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder


def _pip_install(
    folder: Path, lines: list[str], target: LambdaTarget, wheelhouse: Path | None
) -> None:
    offline = ["--no-index", "--find-links", str(wheelhouse)] if wheelhouse else []
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(folder),
        *(option for tag in target.platforms for option in ("--platform", tag)),
        "--implementation",
        "cp",
        "--python-version",
        target.python_version,
        "--only-binary=:all:",
        *offline,
        *lines,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"pip could not install the Lambda's dependencies for {target.machine} "
            f"(Python {target.python_version}):\n{result.stderr.strip()}"
        )


def _digest(
    repository: Path, lines: Iterable[str], target: LambdaTarget, wheelhouse: Path | None
) -> str:
    sha = hashlib.sha256()
    sha.update(repr((list(lines), target)).encode())
    if wheelhouse is not None:
        # Other wheels may resolve to other versions: not the index's build.
        sha.update(b"wheelhouse\0" + str(wheelhouse.resolve()).encode())
    for package in SOURCES:
        for path in sorted((repository / package).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                sha.update(str(path.relative_to(repository)).encode() + b"\0")
                sha.update(path.read_bytes())
    return sha.hexdigest()


if __name__ == "__main__":
    destination = Path(sys.argv[1]) if len(sys.argv) > 1 else REPOSITORY / "infra" / ".build"
    print(build(destination))
