"""``infra/__main__.py`` as ``pulumi up`` runs it: a script, reading the stack's config."""

from __future__ import annotations

import runpy
from collections.abc import Iterator
from pathlib import Path

import pulumi
import pytest

from infra.settings import PROJECT

from .stack import Stack, mock_pulumi

MAIN = Path(__file__).resolve().parents[2] / "infra" / "__main__.py"


@pytest.fixture
def config() -> Iterator[dict[str, str]]:
    values: dict[str, str] = {}
    yield values
    pulumi.runtime.set_all_config({})


def run_main(config: dict[str, str]) -> Stack:
    stack = Stack()
    pulumi.runtime.set_all_config({f"{PROJECT}:{key}": value for key, value in config.items()})
    mock_pulumi(stack, name="dev")

    @pulumi.runtime.test  # type: ignore[misc,untyped-decorator,unused-ignore]
    def declare() -> None:
        runpy.run_path(str(MAIN), run_name="__main__")

    declare()
    return stack


def test_main_reads_the_stack_config_and_ships_the_given_package(
    config: dict[str, str], tmp_path: Path
) -> None:
    config.update({"lambdaPackage": str(tmp_path), "imageTag": "v5", "logRetentionDays": "7"})
    stack = run_main(config)
    (definition,) = stack.one("aws:ecs/taskDefinition:TaskDefinition").json("containerDefinitions")
    assert definition["image"].endswith(":v5")
    groups = stack.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert {g.inputs["retentionInDays"] for g in groups} == {7}
    for function in stack.of_type("aws:lambda/function:Function"):
        code = function.inputs["code"]
        assert isinstance(code, pulumi.FileArchive)
        assert code.path == str(tmp_path)


def test_a_bad_config_stops_before_any_resource(config: dict[str, str]) -> None:
    config.update({"lambdaPackage": "/nowhere", "natGateways": "5"})
    with pytest.raises(
        SystemExit, match="stack configuration: natGateways: 5 is not between 1 and 2"
    ):
        run_main(config)
