"""The gateway image's Dockerfile, read as data (no Docker engine on CI).

What a build would only reveal late: a package the wheel needs left out of
the build context, a root user, an entry point or port that is not the
gateway's.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from infra.components.gateway_service import GATEWAY_PORT

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()
FINAL_STAGE = DOCKERFILE.rsplit("\nFROM ", 1)[1]


def packages() -> list[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    return [pattern.rstrip("*") for pattern in include]


def test_every_installed_package_reaches_the_build() -> None:
    ignore = (ROOT / ".dockerignore").read_text().split()
    for package in packages():
        assert f"!{package}/" in ignore, package
        assert f"COPY {package} {package}" in DOCKERFILE, package
    assert "!pyproject.toml" in ignore and "!README.md" in ignore


def test_the_image_runs_the_gateway_as_a_non_root_user() -> None:
    user = re.search(r"^USER (\d+)(?::(\d+))?$", FINAL_STAGE, re.MULTILINE)
    assert user is not None and int(user.group(1)) != 0
    assert 'ENTRYPOINT ["ocppgw", "gateway"]' in FINAL_STAGE
    assert f"EXPOSE {GATEWAY_PORT}" in FINAL_STAGE
    # The task's root filesystem is read-only: nothing may try to write bytecode.
    assert "PYTHONDONTWRITEBYTECODE=1" in FINAL_STAGE


def test_the_base_python_meets_requires_python() -> None:
    version = re.search(r"^ARG PYTHON=3\.(\d+)$", DOCKERFILE, re.MULTILINE)
    assert version is not None
    required = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    minimum = int(re.fullmatch(r">=3\.(\d+)", required).group(1))  # type: ignore[union-attr]
    assert int(version.group(1)) >= minimum
    assert DOCKERFILE.count("FROM python:${PYTHON}-slim") == 2
