"""The Lambda package carries boto3, not the MQTT worker's or the CLI's dependencies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[3]

PROBE = """
import sys
import orjson
import lambdas.handlers
forbidden = ("gmqtt", "mqttio", "aiohttp", "ocppgw")
print(orjson.dumps(sorted(
    name for name in sys.modules
    if any(name == f or name.startswith(f + ".") for f in forbidden)
)).decode())
"""


def test_importing_the_lambda_module_loads_no_mqtt_http_server_or_cli() -> None:
    # A fresh interpreter: this test process has long imported everything.
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert orjson.loads(done.stdout) == []
