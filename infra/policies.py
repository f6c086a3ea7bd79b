"""IAM and IoT policy documents, as pure functions of the ARNs they name.

Each role gets exactly the actions its code calls, on the resources it calls
them on (the adapters in ``processor/adapters`` and the gateway's registry
read); ``tests/infra`` checks that no document grants ``*`` where AWS
accepts something narrower. The few ``*`` resources left are the ones AWS
requires (``ecr:GetAuthorizationToken``) or that name a whole class the code
addresses by data (``thing/*``: every charger's shadow).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Account",
    "Document",
    "assume_role",
    "gateway_execution_policy",
    "gateway_task_policy",
    "iot_gateway_policy",
    "iot_rule_policy",
    "processor_policy",
    "remote_command_policy",
    "GATEWAY_CLIENT_PREFIX",
]

#: The client ids of the gateway's MQTT pool: ``gw-xxxxxxxx.n`` (see
#: ``gateway.mqtt_settings.new_gateway_id``), and its routes.
GATEWAY_CLIENT_PREFIX = "gw-"

Document = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Account:
    """Where the stack lives: the parts of every ARN it builds by hand."""

    partition: str
    region: str
    account_id: str

    def iot(self, resource: str) -> str:
        return f"arn:{self.partition}:iot:{self.region}:{self.account_id}:{resource}"


def _statement(actions: Sequence[str], resources: Iterable[str]) -> Document:
    return {"Effect": "Allow", "Action": list(actions), "Resource": list(resources)}


def _document(*statements: Document) -> Document:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def assume_role(service: str) -> Document:
    """The trust policy that lets ``service`` (``lambda.amazonaws.com``...) take a role."""
    return _document(
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    )


def _log_streams(log_group_arn: str) -> Document:
    return _statement(["logs:CreateLogStream", "logs:PutLogEvents"], [f"{log_group_arn}:*"])


def iot_gateway_policy(account: Account, prefix: str) -> Document:
    """The gateway certificate's IoT policy: the topic contract and nothing wider.

    A pool connection's client id is its route, so ``${iot:ClientId}`` pins
    each connection to its own uplinks (``{prefix}/in/{cp}/{protocol}/{route}``
    and the batches ``{prefix}/batch/in/{route}``) and its own downlinks
    (``{prefix}/out/{route}/+`` and ``{prefix}/batch/out/{route}``).
    """
    client = "${iot:ClientId}"
    return _document(
        _statement(["iot:Connect"], [account.iot(f"client/{GATEWAY_CLIENT_PREFIX}*")]),
        _statement(
            ["iot:Publish"],
            [
                account.iot(f"topic/{prefix}/in/*/*/{client}"),
                account.iot(f"topic/{prefix}/batch/in/{client}"),
            ],
        ),
        # Presence is published retained, which IoT Core authorises separately.
        _statement(
            ["iot:Publish", "iot:RetainPublish"], [account.iot(f"topic/{prefix}/presence/*")]
        ),
        _statement(
            ["iot:Subscribe"],
            [
                account.iot(f"topicfilter/{prefix}/out/{client}/+"),
                account.iot(f"topicfilter/{prefix}/batch/out/{client}"),
            ],
        ),
        _statement(
            ["iot:Receive"],
            [
                account.iot(f"topic/{prefix}/out/{client}/*"),
                account.iot(f"topic/{prefix}/batch/out/{client}"),
            ],
        ),
    )


def gateway_execution_policy(
    repository_arn: str, log_group_arn: str, secret_arns: Sequence[str]
) -> Document:
    """What ECS needs to start a gateway task: pull its image, inject its secrets, ship its logs."""
    return _document(
        # AWS accepts no narrower resource for this one.
        _statement(["ecr:GetAuthorizationToken"], ["*"]),
        _statement(
            ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
            [repository_arn],
        ),
        _statement(["secretsmanager:GetSecretValue"], secret_arns),
        _log_streams(log_group_arn),
    )


def gateway_task_policy(charge_point_table_arn: str) -> Document:
    """What the gateway process calls: one registry read per charger admitted.

    Its secrets arrive in its environment, injected by ECS with the execution
    role: the process itself never calls Secrets Manager.
    """
    return _document(_statement(["dynamodb:GetItem"], [charge_point_table_arn]))


def _shadows(account: Account, actions: Sequence[str]) -> Document:
    return _statement(actions, [account.iot("thing/*")])


def _downlinks(account: Account, prefix: str) -> Document:
    return _statement(["iot:Publish"], [account.iot(f"topic/{prefix}/out/*")])


def processor_policy(
    account: Account,
    prefix: str,
    *,
    log_group_arn: str,
    queue_arn: str,
    transaction_table_arn: str,
    pending_call_table_arn: str,
) -> Document:
    """The message processor: SQS in, shadows and history, answers out.

    It also sends to its own queue: a batch item that failed goes back as a
    record of its own (``lambdas.handlers``), found by the queue's name.
    """
    return _document(
        _statement(
            [
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:GetQueueAttributes",
                "sqs:GetQueueUrl",
                "sqs:SendMessage",
            ],
            [queue_arn],
        ),
        _shadows(account, ["iot:GetThingShadow", "iot:UpdateThingShadow"]),
        _downlinks(account, prefix),
        # Answers to a batch go back as batches, one topic per route.
        _statement(["iot:Publish"], [account.iot(f"topic/{prefix}/batch/out/*")]),
        _statement(
            ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"],
            [transaction_table_arn],
        ),
        # A charger's answer takes its pending call.
        _statement(["dynamodb:DeleteItem"], [pending_call_table_arn]),
        _log_streams(log_group_arn),
    )


def remote_command_policy(
    account: Account,
    prefix: str,
    *,
    log_group_arn: str,
    charge_point_table_arn: str,
    pending_call_table_arn: str,
) -> Document:
    """Remote start / stop: check the registry, find the route, record and send the CALL."""
    return _document(
        _statement(["dynamodb:GetItem"], [charge_point_table_arn]),
        _shadows(account, ["iot:GetThingShadow"]),
        _downlinks(account, prefix),
        # The CALL is recorded before it is sent, and taken back if sending fails.
        _statement(["dynamodb:PutItem", "dynamodb:DeleteItem"], [pending_call_table_arn]),
        _log_streams(log_group_arn),
    )


def iot_rule_policy(queue_arn: str, error_log_group_arn: str) -> Document:
    """The IoT rules: forward to the queue; log what they could not forward."""
    return _document(
        _statement(["sqs:SendMessage"], [queue_arn]),
        # The CloudWatch Logs action also looks its stream up.
        _statement(
            ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            [f"{error_log_group_arn}:*"],
        ),
    )
