"""What the program sends, checked against AWS's own API models (botocore's).

The mocks accept anything; AWS does not. botocore ships the request shapes
of every AWS API, so the task definition can be validated as ECS would
receive it, and every IAM action named in a policy can be looked up as an
operation of its service.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import pytest
from botocore.model import ServiceModel
from botocore.session import get_session
from botocore.validate import ParamValidator

from .stack import Stack, run_stack

MUTUAL = {
    "securityProfile": "3",
    "tlsCertificateChainSecret": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:a",
    "tlsPrivateKeySecret": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:b",
    "tlsClientCaSecret": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:c",
}
# IAM prefixes whose API lives in more than one botocore model.
_MODELS = {"iot": ("iot", "iot-data")}
# IoT Core's MQTT actions are policy actions without an API operation.
_MQTT_ACTIONS = {"iot:Connect", "iot:Publish", "iot:RetainPublish", "iot:Subscribe", "iot:Receive"}


@cache
def model(service: str) -> ServiceModel:
    return get_session().get_service_model(service)


@pytest.mark.parametrize("config", [{}, MUTUAL], ids=["plain", "mutual-tls"])
def test_task_definition_is_a_valid_register_task_definition_request(
    config: dict[str, str],
) -> None:
    stack = run_stack(config)
    task = stack.one("aws:ecs/taskDefinition:TaskDefinition")
    request: dict[str, Any] = {
        "family": task.inputs["family"],
        "containerDefinitions": task.json("containerDefinitions"),
        "cpu": task.inputs["cpu"],
        "memory": task.inputs["memory"],
        "networkMode": task.inputs["networkMode"],
        "requiresCompatibilities": task.inputs["requiresCompatibilities"],
        "executionRoleArn": task.inputs["executionRoleArn"],
        "taskRoleArn": task.inputs["taskRoleArn"],
        "volumes": task.inputs["volumes"],
        "runtimePlatform": task.inputs["runtimePlatform"],
    }
    shape = model("ecs").operation_model("RegisterTaskDefinition").input_shape
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()
    (container,) = request["containerDefinitions"]
    mounted = {m["sourceVolume"] for m in container["mountPoints"]}
    assert mounted <= {v["name"] for v in request["volumes"]}


def policy_actions(stack: Stack) -> set[str]:
    return {
        action
        for policy in stack.of_type("aws:iam/rolePolicy:RolePolicy")
        for statement in policy.json("policy")["Statement"]
        for action in statement["Action"]
    }


@pytest.mark.parametrize("config", [{}, MUTUAL], ids=["plain", "mutual-tls"])
def test_every_iam_action_is_an_operation_of_its_service(config: dict[str, str]) -> None:
    actions = policy_actions(run_stack(config))
    assert actions
    for action in actions:
        assert re.fullmatch(r"[a-z0-9-]+:[A-Za-z]+", action), action
        prefix, operation = action.split(":")
        if action in _MQTT_ACTIONS and operation != "Publish":
            continue
        services = _MODELS.get(prefix, (prefix,))
        assert any(operation in model(s).operation_names for s in services), action


def test_iot_policy_actions_are_iot_cores_mqtt_actions() -> None:
    stack = run_stack()
    policy = stack.one("aws:iot/policy:Policy").json("policy")
    actions = {a for statement in policy["Statement"] for a in statement["Action"]}
    assert actions <= _MQTT_ACTIONS
