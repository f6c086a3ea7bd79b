from __future__ import annotations

from collections.abc import Iterator

import pytest

from .stack import release_event_loop


@pytest.fixture(scope="package", autouse=True)
def _pulumi_event_loop() -> Iterator[None]:
    """Unset the programs' event loop once the package's tests are done."""
    yield
    release_event_loop()
