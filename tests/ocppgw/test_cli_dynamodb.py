"""``ocppgw charge-points`` on the AWS deployment's DynamoDB ``ChargePointTable``.

The commands run as a user would run them, with ``DYNAMODB_CHARGE_POINT_TABLE``
set, against moto in server mode on loopback (as the AWS adapters' tests do).
boto3 finds credentials in the process environment, as for any AWS tool, so
each test sets dummy ones there (and points the AWS config files nowhere).
"""

from __future__ import annotations

import asyncio
import io
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from botocore.exceptions import ClientError

from ocppgw.cli import main
from ocppj import verify_password
from processor.adapters.dynamodb_registry import DynamoDbRegistry
from processor.adapters.dynamodb_tables import create_tables

from ..moto_support import REGION, aws_client, moto_server

#: Credential sources boto3 would otherwise look at, on this machine or in CI.
CREDENTIAL_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
)


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def dynamodb(moto_endpoint: str) -> Any:
    return aws_client("dynamodb", moto_endpoint)


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy keys in the environment, and nothing else boto3 could pick up."""
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # Each test's SQLite default (.ocppgw) would land here: none must appear.
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def table(dynamodb: Any) -> str:
    name = f"ChargePointTable-{uuid.uuid4().hex[:12]}"
    create_tables(dynamodb, name, f"TransactionTable-{name}")
    return name


@pytest.fixture
def environ(table: str, moto_endpoint: str) -> dict[str, str]:
    return {
        "DYNAMODB_CHARGE_POINT_TABLE": table,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": moto_endpoint,
    }


def run(
    capsys: pytest.CaptureFixture[str], environ: dict[str, str], *argv: str
) -> tuple[int, str, str]:
    try:
        code = main(list(argv), environ=environ)
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def stored_hash(dynamodb: Any, table: str, cp: str) -> str | None:
    access = asyncio.run(DynamoDbRegistry(dynamodb, table).find(cp))
    assert access is not None, f"{cp} is not in {table}"
    return access.password_hash


def test_add_list_remove(
    capsys: pytest.CaptureFixture[str],
    environ: dict[str, str],
    dynamodb: Any,
    table: str,
    tmp_path: Path,
) -> None:
    code, out, _ = run(capsys, environ, "charge-points", "add", "CP002", "CP001", "RDAM 123")
    assert code == 0
    assert out.splitlines() == ["registered CP002", "registered CP001", "registered RDAM 123"]
    registered = asyncio.run(DynamoDbRegistry(dynamodb, table).registered())
    assert [cp for cp, _ in registered] == ["CP001", "CP002", "RDAM 123"]

    code, out, _ = run(capsys, environ, "charge-points", "add", "CP001")
    assert (code, out) == (0, "CP001 was already registered\n")

    code, out, _ = run(capsys, environ, "charge-points", "list")
    rows = [line.split("\t") for line in out.splitlines()]
    assert [(row[0], row[2]) for row in rows] == [("CP001", "-"), ("CP002", "-"), ("RDAM 123", "-")]
    assert rows[0][1] == dict(registered)["CP001"]

    code, out, _ = run(capsys, environ, "charge-points", "list", "--json")
    listed = orjson.loads(out)
    assert listed[0] == {
        "chargePointId": "CP001",
        "registrationTime": dict(registered)["CP001"],
        "hasPassword": False,
    }
    assert [entry["chargePointId"] for entry in listed] == ["CP001", "CP002", "RDAM 123"]

    code, out, err = run(capsys, environ, "charge-points", "remove", "CP001", "NOPE")
    assert code == 1
    assert out == "removed CP001\n"
    assert err == "ocppgw: error: NOPE is not registered\n"

    code, out, _ = run(capsys, environ, "charge-points", "list")
    assert [line.split("\t")[0] for line in out.splitlines()] == ["CP002", "RDAM 123"]
    assert not (tmp_path / ".ocppgw").exists()  # the SQLite folder was never opened


def test_add_with_password_prints_each_password_once_and_stores_its_hash(
    capsys: pytest.CaptureFixture[str], environ: dict[str, str], dynamodb: Any, table: str
) -> None:
    run(capsys, environ, "charge-points", "add", "OLD")
    code, out, err = run(capsys, environ, "charge-points", "add", "--password", "CP1", "OLD")
    assert code == 0
    printed = dict(line.split("\t") for line in out.splitlines())
    assert list(printed) == ["CP1"]
    assert "OLD was already registered; its password is unchanged" in err
    assert "passwords are not stored" in err
    stored = stored_hash(dynamodb, table, "CP1")
    assert stored is not None and printed["CP1"] not in stored
    assert verify_password(printed["CP1"].encode(), stored)
    assert stored_hash(dynamodb, table, "OLD") is None

    _, out, _ = run(capsys, environ, "charge-points", "list")
    assert [(row[0], row[2]) for row in (line.split("\t") for line in out.splitlines())] == [
        ("CP1", "password"),
        ("OLD", "-"),
    ]
    _, out, _ = run(capsys, environ, "charge-points", "list", "--json")
    assert {e["chargePointId"]: e["hasPassword"] for e in orjson.loads(out)} == {
        "CP1": True,
        "OLD": False,
    }


def test_set_password_rotates_and_reads_stdin(
    capsys: pytest.CaptureFixture[str],
    environ: dict[str, str],
    dynamodb: Any,
    table: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, out, _ = run(capsys, environ, "charge-points", "add", "--password", "CP1")
    old = out.split("\t")[1].strip()

    code, out, err = run(capsys, environ, "charge-points", "set-password", "CP1")
    assert code == 0
    cp, new = out.strip().split("\t")
    assert cp == "CP1" and new != old
    assert "cannot be shown again" in err
    stored = stored_hash(dynamodb, table, "CP1") or ""
    assert verify_password(new.encode(), stored)
    assert not verify_password(old.encode(), stored)

    chosen = b"\x00\xff raw bytes, 24 long"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(chosen + b"\n")))
    code, out, _ = run(capsys, environ, "charge-points", "set-password", "CP1", "--password-stdin")
    assert (code, out) == (0, "password of CP1 set\n")
    assert verify_password(chosen, stored_hash(dynamodb, table, "CP1") or "")


def test_set_password_of_an_unknown_charge_point_exits_1(
    capsys: pytest.CaptureFixture[str], environ: dict[str, str], dynamodb: Any, table: str
) -> None:
    code, out, err = run(capsys, environ, "charge-points", "set-password", "GHOST")
    assert (code, out) == (1, "")
    assert err == "ocppgw: error: GHOST is not registered\n"
    assert asyncio.run(DynamoDbRegistry(dynamodb, table).find("GHOST")) is None  # not created


def test_a_missing_region_is_named(capsys: pytest.CaptureFixture[str], table: str) -> None:
    code, out, err = run(capsys, {"DYNAMODB_CHARGE_POINT_TABLE": table}, "charge-points", "list")
    assert (code, out) == (2, "")
    assert err == (
        "ocppgw: error: AWS_REGION: must be set to the region of DYNAMODB_CHARGE_POINT_TABLE"
        f" ({table!r})\n"
    )


def test_a_missing_table_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], environ: dict[str, str]
) -> None:
    environ["DYNAMODB_CHARGE_POINT_TABLE"] = "NoSuchTable"
    for argv in (("list",), ("add", "CP1"), ("remove", "CP1"), ("set-password", "CP1")):
        code, out, err = run(capsys, environ, "charge-points", *argv)
        assert (code, out) == (1, ""), argv
        assert re.fullmatch(
            r"ocppgw: error: DynamoDB table 'NoSuchTable' in eu-west-1: "
            r"ResourceNotFoundException: [^\n]*\n",
            err,
        ), err


def test_missing_credentials_are_a_one_line_error(
    capsys: pytest.CaptureFixture[str], environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    code, out, err = run(capsys, environ, "charge-points", "list")
    assert (code, out) == (1, "")
    assert err.startswith("ocppgw: error: DynamoDB table ")
    assert "no AWS credentials found" in err
    assert err.count("\n") == 1


def test_data_dir_and_a_table_together_are_refused(
    capsys: pytest.CaptureFixture[str], environ: dict[str, str], tmp_path: Path
) -> None:
    code, out, err = run(capsys, environ, "charge-points", "list", "--data-dir", str(tmp_path))
    assert (code, out) == (2, "")
    assert "--data-dir names a SQLite registry, but DYNAMODB_CHARGE_POINT_TABLE is set" in err


def test_a_failure_mid_add_reports_what_was_registered(
    capsys: pytest.CaptureFixture[str],
    environ: dict[str, str],
    dynamodb: Any,
    table: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # DynamoDB throttles the second write: the first charger's password must
    # still be shown, as it cannot be shown later.
    original = DynamoDbRegistry.add
    calls = 0

    async def throttled(self: DynamoDbRegistry, *args: Any, **kwargs: Any) -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 2:
            error = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
            raise ClientError(error, "PutItem")  # type: ignore[arg-type]
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(DynamoDbRegistry, "add", throttled)
    code, out, err = run(capsys, environ, "charge-points", "add", "--password", "CP1", "CP2", "CP3")
    assert code == 1
    [(cp, password)] = [line.split("\t") for line in out.splitlines()]
    assert cp == "CP1"
    assert verify_password(password.encode(), stored_hash(dynamodb, table, "CP1") or "")
    assert err.splitlines()[-1] == (
        f"ocppgw: error: DynamoDB table {table!r} in eu-west-1: ThrottlingException: Rate exceeded"
    )
    registered = asyncio.run(DynamoDbRegistry(dynamodb, table).registered())
    assert [cp for cp, _ in registered] == ["CP1"]


def test_the_output_is_the_sqlite_registrys(
    capsys: pytest.CaptureFixture[str], environ: dict[str, str], tmp_path: Path
) -> None:
    script = [
        ("add", "B", "A"),
        ("add", "A"),
        ("list",),
        ("list", "--json"),
        ("remove", "A", "Z"),
        ("set-password", "Z"),
        ("list",),
    ]
    sqlite = {"OCPP_DATA_DIR": str(tmp_path / "sqlite")}
    for argv in script:
        by_sqlite = run(capsys, sqlite, "charge-points", *argv)
        by_dynamodb = run(capsys, environ, "charge-points", *argv)
        assert _without_times(by_dynamodb) == _without_times(by_sqlite), argv


def _without_times(result: tuple[int, str, str]) -> tuple[int, str, str]:
    code, out, err = result
    return code, re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z", "TIME", out), err
