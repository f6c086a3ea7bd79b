"""The processor's Lambda package, built for real with pip.

The package for this machine is built offline, from wheels of what the test
environment has installed (``wheelhouse.py``). The deployable arm64 package
needs wheels that only the package index has (about 20 MB): that test is
marked ``network`` and runs with ``--run-network``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from infra.lambda_package import (
    DISTRIBUTIONS,
    LAMBDA_TARGET,
    REPOSITORY,
    SOURCES,
    build,
    requirements,
)

from .conftest import LOCAL_TARGET


def test_requirements_keep_pyprojects_ranges() -> None:
    lines = requirements()
    assert [line.split(">")[0].split("<")[0] for line in lines] == list(DISTRIBUTIONS)
    assert any(line.startswith("orjson>=") and "<" in line for line in lines)


def test_requirements_name_a_missing_distribution(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\ndependencies = ["orjson>=3"]\n')
    with pytest.raises(LookupError, match="ocpp, jsonschema-rs, boto3"):
        requirements(pyproject)


def test_target_is_arm64_python_312_with_every_manylinux_level() -> None:
    assert LAMBDA_TARGET.runtime == "python3.12"
    platforms = LAMBDA_TARGET.platforms
    assert platforms[0] == "manylinux_2_34_aarch64"
    assert "manylinux_2_17_aarch64" in platforms  # manylinux2014
    assert "manylinux_2_28_aarch64" in platforms


@pytest.mark.network
def test_arm64_package_holds_the_sources_and_aarch64_wheels_only(lambda_cache: Path) -> None:
    folder = build(lambda_cache)
    assert (folder / "lambdas" / "handlers.py").is_file()
    assert (folder / "ocppj" / "topics.py").is_file()
    assert not list(folder.rglob("__pycache__"))
    extensions = [p.name for p in folder.rglob("*.so")]
    assert any(name.startswith("orjson.cpython-312-aarch64") for name in extensions)
    assert extensions and not any("x86_64" in name for name in extensions)
    # The gateway's and the worker's libraries stay out.
    for name in ("gmqtt", "mqttio", "aiohttp", "picows", "uvloop", "ocppgw", "gateway"):
        assert not (folder / name).exists(), name
    # A second build of the same tree is the cached one.
    assert build(lambda_cache) == folder


def test_package_imports_the_handlers_with_nothing_else_on_the_path(
    local_lambda_package: Path,
) -> None:
    folder = local_lambda_package
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import lambdas.handlers as m;"
        "assert callable(m.message_processor_handler);"
        "assert callable(m.remote_start_handler) and callable(m.remote_stop_handler);"
        "import processor.schemas;"
        "print(sorted(n for n in ('gmqtt', 'aiohttp', 'ocppgw') if n in sys.modules))"
    )
    # -S: no site-packages; the package alone must be enough.
    result = subprocess.run(
        [sys.executable, "-S", "-c", probe, str(folder)],
        capture_output=True,
        text=True,
        check=False,
        cwd=folder,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_changed_source_makes_a_new_package(
    lambda_cache: Path, local_wheelhouse: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "repo"
    for name in SOURCES:
        (copy / name).mkdir(parents=True)
        (copy / name / "__init__.py").write_text("")
    (copy / "pyproject.toml").write_text((REPOSITORY / "pyproject.toml").read_text())
    first = build(lambda_cache, LOCAL_TARGET, repository=copy, wheelhouse=local_wheelhouse)
    (copy / "processor" / "__init__.py").write_text("# changed\n")
    second = build(lambda_cache, LOCAL_TARGET, repository=copy, wheelhouse=local_wheelhouse)
    assert first != second
    assert (second / "processor" / "__init__.py").read_text() == "# changed\n"
