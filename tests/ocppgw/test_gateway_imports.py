"""``ocppgw gateway`` reads the registry without loading the processor's OCPP core.

The gateway process imports the registry adapters from ``processor.adapters``;
the handlers, the schemas and their validator (jsonschema-rs, the ``ocpp``
package's files) belong to the processor alone.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]

FORBIDDEN = (
    "processor.handlers",
    "processor.schemas",
    "processor.router",
    "processor.core",
    "jsonschema_rs",
    "ocpp",
)

PROBE = """
import importlib
import sys
import orjson
for module in sys.argv[1:]:
    importlib.import_module(module)
forbidden = {forbidden!r}
print(orjson.dumps(sorted(
    name for name in sys.modules
    if any(name == f or name.startswith(f + ".") for f in forbidden)
)).decode())
"""


def loaded_by(*modules: str) -> list[str]:
    # A fresh interpreter: this test process has long imported everything.
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(forbidden=FORBIDDEN), *modules],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    loaded: list[str] = orjson.loads(done.stdout)
    return loaded


@pytest.mark.parametrize(
    "modules",
    [
        # What the gateway process imports (a spawned one starts at ocppgw.processes).
        ("ocppgw.gateway_service", "ocppgw.processes"),
        ("processor.adapters.sqlite_registry", "processor.adapters.dynamodb_registry"),
    ],
)
def test_the_gateway_loads_no_handlers_schemas_or_validator(modules: tuple[str, ...]) -> None:
    assert loaded_by(*modules) == []


def test_the_probe_sees_what_the_processor_loads() -> None:
    assert set(loaded_by("processor.core")) >= {"processor.core", "jsonschema_rs"}
