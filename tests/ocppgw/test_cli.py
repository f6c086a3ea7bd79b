"""The ``ocppgw`` command, called as a user would call it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from ocppgw.cli import main
from processor.adapters import Database, SqliteShadowStore


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv), environ={})
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_add_list_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ["--data-dir", str(tmp_path)]
    code, out, _ = run(capsys, "charge-points", "add", *data, "CP002", "CP001", "RDAM 123")
    assert code == 0
    assert out.splitlines() == ["registered CP002", "registered CP001", "registered RDAM 123"]

    code, out, _ = run(capsys, "charge-points", "add", *data, "CP001")
    assert (code, out) == (0, "CP001 was already registered\n")

    code, out, _ = run(capsys, "charge-points", "list", *data)
    assert [line.split("\t")[0] for line in out.splitlines()] == ["CP001", "CP002", "RDAM 123"]

    code, out, _ = run(capsys, "charge-points", "list", "--json", *data)
    listed = orjson.loads(out)
    assert [entry["chargePointId"] for entry in listed] == ["CP001", "CP002", "RDAM 123"]
    assert datetime.fromisoformat(listed[0]["registrationTime"]).tzinfo is not None

    code, out, err = run(capsys, "charge-points", "remove", *data, "CP001", "NOPE")
    assert code == 1
    assert out == "removed CP001\n"
    assert "NOPE is not registered" in err

    code, out, _ = run(capsys, "charge-points", "list", *data)
    assert [line.split("\t")[0] for line in out.splitlines()] == ["CP002", "RDAM 123"]


def test_invalid_identity_is_refused_and_nothing_is_registered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data-dir", str(tmp_path)]
    code, _, err = run(capsys, "charge-points", "add", *data, "GOOD", "bad:id")
    assert code == 2
    assert "invalid charge point identity: identity contains ':'" in err
    code, out, _ = run(capsys, "charge-points", "list", *data)
    assert out == ""


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "the following arguments are required: COMMAND"),
        (("charge-points",), "the following arguments are required: ACTION"),
        (("charge-points", "add"), "the following arguments are required: ID"),
        (("dev", "--port", "http"), "argument --port: 'http' is not a whole number"),
        (("dev", "--port", "99999"), "argument --port: 99999 is not a TCP port number"),
        (("launch",), "invalid choice: 'launch'"),
    ],
)
def test_bad_arguments_name_the_problem(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in err


def test_bad_environment_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["charge-points", "list"], environ={"OCPP_GATEWAY_PORT": "x"})
    assert exit_.value.code == 2
    assert "OCPP_GATEWAY_PORT: 'x' is not a whole number" in capsys.readouterr().err


def test_shadow_prints_the_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "shadow", "--data-dir", str(tmp_path), "CP001")
    assert code == 1
    assert "CP001 has no shadow yet" in err

    async def write() -> None:
        database = Database(tmp_path)
        try:
            store = SqliteShadowStore(database, _Clock())
            await store.update("CP001", {"reported": {"chargingStation": {"model": "M"}}})
        finally:
            database.close()

    asyncio.run(write())
    code, out, _ = run(capsys, "shadow", "--data-dir", str(tmp_path), "CP001")
    assert code == 0
    document = orjson.loads(out)
    assert document["state"]["reported"]["chargingStation"] == {"model": "M"}
    assert document["version"] == 1


class _Clock:
    def now(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC)
