"""The ``ocppgw`` command, called as a user would call it."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from ocppgw.cli import main
from ocppj import verify_password
from processor.adapters import Database, SqliteRegistry, SqliteShadowStore


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
    assert {line.split("\t")[2] for line in out.splitlines()} == {"-"}

    code, out, _ = run(capsys, "charge-points", "list", "--json", *data)
    listed = orjson.loads(out)
    assert [entry["chargePointId"] for entry in listed] == ["CP001", "CP002", "RDAM 123"]
    assert datetime.fromisoformat(listed[0]["registrationTime"]).tzinfo is not None
    assert [entry["hasPassword"] for entry in listed] == [False, False, False]

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
        (("charge-points", "add"), "no charge point identity given (as arguments or with --file)"),
        (("charge-points", "set-password"), "the following arguments are required: ID"),
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


# -- bulk registration and passwords ------------------------------------------


def stored_hash(data_dir: Path, charge_point_id: str) -> str | None:
    database = Database(data_dir)
    try:
        access = SqliteRegistry(database).find_sync(charge_point_id)
    finally:
        database.close()
    assert access is not None, f"{charge_point_id} is not registered"
    return access.password_hash


def feed_stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))


def listed(capsys: pytest.CaptureFixture[str], data_dir: Path) -> list[list[str]]:
    code, out, _ = run(capsys, "charge-points", "list", "--data-dir", str(data_dir))
    assert code == 0
    return [line.split("\t") for line in out.splitlines()]


IDS_FILE = """\
# Site Rotterdam, phase 1
CP101
  CP102\t

# RDAM chargers
RDAM 123
#not-a-comment-inside-an-id is still a comment
CP#4
"""


def test_add_from_a_file_skips_blank_lines_and_comments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text(IDS_FILE, encoding="utf-8")
    data = ["--data-dir", str(tmp_path / "state")]
    code, out, _ = run(capsys, "charge-points", "add", *data, "--file", str(ids), "CP100")
    assert code == 0
    assert out.splitlines() == [
        "registered CP100",
        "registered CP101",
        "registered CP102",
        "registered RDAM 123",
        "registered CP#4",
    ]
    assert [row[0] for row in listed(capsys, tmp_path / "state")] == [
        "CP#4",
        "CP100",
        "CP101",
        "CP102",
        "RDAM 123",
    ]


def test_add_reads_identities_from_stdin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    feed_stdin(monkeypatch, "\ufeffCP1\r\nCP2\r\nCP1\r\n".encode())
    code, out, _ = run(capsys, "charge-points", "add", "--data-dir", str(tmp_path), "--file", "-")
    assert code == 0
    assert out.splitlines() == ["registered CP1", "registered CP2"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("CP1\nCP2\nbad:id\nCP4\n", "ids.txt line 3: identity contains ':'"),
        ("CP1\n" + "x" * 49 + "\n", "ids.txt line 2: identity is longer than 48"),
        ("CP1\nCP\x072\n", "ids.txt line 2: identity contains control"),
    ],
)
def test_an_invalid_identity_in_the_file_registers_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text(content, encoding="utf-8")
    data = ["--data-dir", str(tmp_path / "state")]
    for extra in ((), ("--password",)):
        code, out, err = run(capsys, "charge-points", "add", *data, *extra, "--file", str(ids))
        assert code == 2
        assert message in err
        assert out == ""
        assert listed(capsys, tmp_path / "state") == []


def test_a_file_that_is_not_utf8_or_missing_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_bytes(b"CP1\n\xff\xfe\n")
    data = ["--data-dir", str(tmp_path / "state")]
    code, _, err = run(capsys, "charge-points", "add", *data, "--file", str(ids), "CP0")
    assert code == 2
    assert "ids.txt: not UTF-8 text" in err
    code, _, err = run(capsys, "charge-points", "add", *data, "--file", str(tmp_path / "nope"))
    assert code == 1
    assert "No such file" in err
    assert listed(capsys, tmp_path / "state") == []


def test_add_with_password_prints_each_password_once_and_stores_its_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data-dir", str(tmp_path)]
    run(capsys, "charge-points", "add", *data, "OLD")
    code, out, err = run(capsys, "charge-points", "add", *data, "--password", "CP1", "OLD", "CP2")
    assert code == 0
    printed = dict(line.split("\t") for line in out.splitlines())
    assert list(printed) == ["CP1", "CP2"]
    assert "OLD was already registered; its password is unchanged" in err
    assert "passwords are not stored" in err and "cannot be shown again" in err
    for cp, password in printed.items():
        assert 16 <= len(password.encode()) <= 40
        stored = stored_hash(tmp_path, cp)
        assert stored is not None and password not in stored
        assert verify_password(password.encode(), stored)
        assert password not in err
    assert printed["CP1"] != printed["CP2"]
    assert stored_hash(tmp_path, "OLD") is None
    assert [(row[0], row[2]) for row in listed(capsys, tmp_path)] == [
        ("CP1", "password"),
        ("CP2", "password"),
        ("OLD", "-"),
    ]
    code, out, _ = run(capsys, "charge-points", "list", "--json", *data)
    assert {e["chargePointId"]: e["hasPassword"] for e in orjson.loads(out)} == {
        "CP1": True,
        "CP2": True,
        "OLD": False,
    }
    # Shown once: nothing prints it again, and adding again does not rotate it.
    code, out, err = run(capsys, "charge-points", "add", *data, "--password", "CP1")
    assert (code, out) == (0, "")
    assert "CP1 was already registered" in err
    assert verify_password(printed["CP1"].encode(), stored_hash(tmp_path, "CP1") or "")


def test_set_password_rotates_and_the_old_password_stops_working(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data-dir", str(tmp_path)]
    _, out, _ = run(capsys, "charge-points", "add", *data, "--password", "CP1")
    old = out.split("\t")[1].strip()
    code, out, err = run(capsys, "charge-points", "set-password", *data, "CP1")
    assert code == 0
    cp, new = out.strip().split("\t")
    assert cp == "CP1" and new != old
    assert "cannot be shown again" in err
    stored = stored_hash(tmp_path, "CP1")
    assert stored is not None
    assert verify_password(new.encode(), stored)
    assert not verify_password(old.encode(), stored)


def test_set_password_gives_a_first_password_to_a_charger_without_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data-dir", str(tmp_path)]
    run(capsys, "charge-points", "add", *data, "CP1")
    code, out, _ = run(capsys, "charge-points", "set-password", *data, "CP1")
    assert code == 0
    assert verify_password(out.split("\t")[1].strip().encode(), stored_hash(tmp_path, "CP1") or "")
    assert listed(capsys, tmp_path)[0][2] == "password"


@pytest.mark.parametrize(
    ("given", "password"),
    [
        (b"0123456789abcdef\n", b"0123456789abcdef"),
        (b"0123456789abcdef\r\n", b"0123456789abcdef"),
        # The 1.6 whitepaper's raw 20-byte key: not UTF-8, no newline to drop.
        (bytes(range(0xEC, 0x100)), bytes(range(0xEC, 0x100))),
        (b"x" * 40 + b"\n", b"x" * 40),
    ],
)
def test_set_password_reads_raw_bytes_from_stdin(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    given: bytes,
    password: bytes,
) -> None:
    data = ["--data-dir", str(tmp_path)]
    run(capsys, "charge-points", "add", *data, "CP1")
    feed_stdin(monkeypatch, given)
    code, out, _ = run(capsys, "charge-points", "set-password", *data, "--password-stdin", "CP1")
    assert (code, out) == (0, "password of CP1 set\n")
    assert verify_password(password, stored_hash(tmp_path, "CP1") or "")


@pytest.mark.parametrize("given", [b"", b"short\n", b"0123456789abcde\n", b"x" * 41])
def test_set_password_refuses_stdin_passwords_outside_16_to_40_bytes(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    given: bytes,
) -> None:
    data = ["--data-dir", str(tmp_path)]
    run(capsys, "charge-points", "add", *data, "CP1")
    feed_stdin(monkeypatch, given)
    code, out, err = run(capsys, "charge-points", "set-password", *data, "--password-stdin", "CP1")
    assert code == 2
    assert "must be 16 to 40 bytes" in err
    assert out == ""
    assert stored_hash(tmp_path, "CP1") is None


def test_set_password_of_an_unknown_charge_point_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "charge-points", "set-password", "--data-dir", str(tmp_path), "NOPE"
    )
    assert code == 1
    assert out == ""
    assert "NOPE is not registered" in err
    assert listed(capsys, tmp_path) == []


class _Clock:
    def now(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC)
