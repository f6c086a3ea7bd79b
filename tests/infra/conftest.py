from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.lambda_package import DISTRIBUTIONS, LambdaTarget, build

from .stack import release_event_loop
from .wheelhouse import write_wheelhouse

#: The Lambda's package as it would be for this machine's Python, to run it here.
LOCAL_TARGET = LambdaTarget.local()


@pytest.fixture(scope="package", autouse=True)
def _pulumi_event_loop() -> Iterator[None]:
    """Unset the programs' event loop once the package's tests are done."""
    yield
    release_event_loop()


@pytest.fixture(scope="session")
def lambda_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the tests build Lambda packages."""
    return tmp_path_factory.mktemp("lambda-build")


@pytest.fixture(scope="session")
def local_wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheels of the Lambda's dependencies as installed here: builds for this
    machine need no package index."""
    return write_wheelhouse(tmp_path_factory.mktemp("wheelhouse"), DISTRIBUTIONS)


@pytest.fixture(scope="session")
def local_lambda_package(lambda_cache: Path, local_wheelhouse: Path) -> Path:
    """The Lambda package built for this machine's Python and CPU, so it can run
    here, from the local wheelhouse (offline)."""
    return build(lambda_cache, LOCAL_TARGET, wheelhouse=local_wheelhouse)
