"""``python -m bench.lambda_footprint``: the processor Lambda's package and memory.

The functions are deployed with 128 MB (the seed's size). This measures what
that has to hold, running the package ``infra/lambda_package.py`` builds:

* the deployable package (arm64, CPython 3.12): its size unzipped and zipped
  (Lambda takes 250 MB unzipped, 50 MB zipped for a direct upload);
* the same package built for this machine, run in a fresh ``python -S``
  (nothing from this environment) with the handlers' environment, against
  moto on loopback: the cold start (import, the first batch) and the peak
  resident memory after the standard mix of every charger's session, both
  OCPP versions, in SQS batches of 10 as the event source mapping sends them.

Time per record is moto's more than ours: it is printed, not judged. Needs
the test extras (moto). Writes ``bench/results/lambda.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from infra.lambda_package import LAMBDA_TARGET, LambdaTarget, build
from ocppj.topics import encode_segment
from processor.adapters.dynamodb_registry import DynamoDbRegistry
from processor.adapters.dynamodb_tables import create_tables
from processor.adapters.thing_names import thing_name

from . import messages
from .arguments import bounded

RESULTS = Path(__file__).resolve().parent / "results" / "lambda.json"
CACHE = Path(__file__).resolve().parent.parent / "infra" / ".build"
#: The functions' memory size (infra/components/processing.py).
LIMIT_MB = 128
BATCH = 10
REGION = "eu-west-1"
TABLES = ("ChargePointTable-bench", "TransactionTable-bench", "PendingCallTable-bench")
LOCAL = LambdaTarget.local()

# Runs in the package alone: import, then one batch per line; reports what it cost.
RUNNER = """
import json, sys, time
def status_kib(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field))
started = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import lambdas.handlers as handlers
imported = time.perf_counter()
batches = []
for line in sys.stdin:
    t = time.perf_counter()
    result = handlers.message_processor_handler(json.loads(line), None)
    batches.append([time.perf_counter() - t, len(result["batchItemFailures"]), status_kib("VmRSS")])
print(json.dumps({
    "import_s": imported - started,
    "batches": batches,
    # VmHWM, not ru_maxrss: the latter keeps the forking parent's size across exec.
    "peak_rss_kib": status_kib("VmHWM"),
}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lambda_footprint", description=__doc__)
    parser.add_argument(
        "--chargers", type=bounded(int, 1, 2000), default=200, help="chargers, each one session"
    )
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lambda-footprint-") as scratch:
        summary = measure(Path(scratch), args.chargers)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))
    return 0 if summary["peak_rss_mib"] < LIMIT_MB and summary["failed_records"] == 0 else 1


def measure(scratch: Path, chargers: int, cache: Path = CACHE) -> dict[str, Any]:
    """Build both packages (cached in ``cache``), run ``chargers`` sessions, summarise."""
    deployable = build(cache, LAMBDA_TARGET)
    archive = shutil.make_archive(str(scratch / "package"), "zip", deployable)
    local = build(cache, LOCAL)
    _quiet_moto()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        identities = _prepare(endpoint, chargers)
        events = [_event(batch) for batch in _batches(_records(identities))]
        run = _run(local, endpoint, events)
    finally:
        server.stop()
    times = [seconds for seconds, _, _ in run["batches"]]
    rss = [kib for _, _, kib in run["batches"]]
    records = sum(len(event["Records"]) for event in events)
    return {
        "package": f"{LAMBDA_TARGET.machine} / {LAMBDA_TARGET.runtime}",
        "package_unzipped_mib": round(_size(deployable) / 2**20, 1),
        "package_zipped_mib": round(os.path.getsize(archive) / 2**20, 1),
        "run_on": f"{LOCAL.machine} / python{LOCAL.python_version}, against moto",
        "import_ms": round(run["import_s"] * 1000),
        "first_batch_ms": round(times[0] * 1000),
        "cold_start_ms": round((run["import_s"] + times[0]) * 1000),
        "records": records,
        "batches": len(events),
        "failed_records": sum(failed for _, failed, _ in run["batches"]),
        "ms_per_record_warm_vs_moto": round(sum(times[1:]) * 1000 / max(records - BATCH, 1), 2),
        "rss_after_first_batch_mib": round(rss[0] / 1024, 1),
        "rss_after_half_mib": round(rss[len(rss) // 2] / 1024, 1),
        "rss_at_end_mib": round(rss[-1] / 1024, 1),
        "peak_rss_mib": round(run["peak_rss_kib"] / 1024, 1),
        "memory_limit_mb": LIMIT_MB,
    }


def _quiet_moto() -> None:
    """moto's server logs every request it serves; the summary is what matters here."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def _prepare(endpoint: str, chargers: int) -> list[str]:
    def client(service: str) -> Any:
        return boto3.session.Session().client(
            service,
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )

    dynamodb, iot = client("dynamodb"), client("iot")
    create_tables(dynamodb, *TABLES)
    identities = [f"BENCH-{n:05d}" for n in range(chargers)]
    asyncio.run(DynamoDbRegistry(dynamodb, TABLES[0]).add(identities, datetime.now(UTC)))
    for identity in identities:
        iot.create_thing(thingName=thing_name(identity))
    return identities


def _records(identities: list[str]) -> list[dict[str, Any]]:
    """Each charger's presence, boot and one session, as the IoT rules deliver them."""
    records: list[dict[str, Any]] = []
    for n, identity in enumerate(identities):
        protocol = messages.PROTOCOLS[n % 2]
        route = f"gw-bench.{n % 4}"
        cp = encode_segment(identity)
        records.append(
            {
                "presence": {
                    "connected": True,
                    "route": route,
                    "protocol": protocol,
                    "at": messages.now(),
                },
                "chargePointId": cp,
            }
        )
        tx = f"tx-{n}"
        calls = [
            messages.boot(protocol),
            messages.status(protocol, charging=True),
            messages.session_start(protocol, "BENCHTAG", 1000, tx, None),
            *(messages.meter_reading(protocol, 1, 1000 + 500 * i, 7400.0, i + 1) for i in range(3)),
            messages.status(protocol, charging=False),
        ]
        for i, (action, payload) in enumerate(calls):
            records.append(
                {
                    "message": [2, f"{n}-{i}", action, payload],
                    "chargePointId": cp,
                    "protocol": protocol,
                    "route": route,
                }
            )
    return records


def _batches(records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [records[i : i + BATCH] for i in range(0, len(records), BATCH)]


def _event(bodies: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": [{"messageId": str(i), "body": json.dumps(b)} for i, b in enumerate(bodies)]}


def _run(package: Path, endpoint: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_ENDPOINT_URL": endpoint,
        "IOT_ENDPOINT": endpoint,
        "DYNAMODB_CHARGE_POINT_TABLE": TABLES[0],
        "DYNAMODB_TRANSACTION_TABLE": TABLES[1],
        "DYNAMODB_PENDING_CALL_TABLE": TABLES[2],
        "OCPP_LOG_LEVEL": "WARNING",
        **{k: v for k, v in os.environ.items() if k.startswith("MALLOC_")},
    }
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-S", "-c", RUNNER, str(package)],
        input="".join(json.dumps(event) + "\n" for event in events),
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(
            f"the package failed after {time.monotonic() - started:.0f} s:\n{result.stderr}"
        )
    return json.loads(result.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def _size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


if __name__ == "__main__":
    raise SystemExit(main())
