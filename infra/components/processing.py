"""IoT rules -> SQS (with a dead-letter queue) -> the processor Lambda; remote start and stop.

* Uplinks: ``SELECT * AS message, topic(3) AS chargePointId, topic(4) AS
  protocol, topic(5) AS route FROM '{prefix}/in/+/+/+'``.
* Presence: ``SELECT * AS presence, topic(3) AS chargePointId FROM
  '{prefix}/presence/+'``, into the same queue: the processor keeps the
  shadow's connection record, which remote commands read to find a route.
* Batches: ``SELECT *, topic(4) AS route FROM '{prefix}/batch/in/+'``, into
  the same queue: a gateway connection's queued frames and presence in one
  publish (``ocppj.batch``); the body is the batch with its route added.

The processor reports partial batch failures, so one failing record is
retried alone; after five receives it moves to the dead-letter queue.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ..lambda_package import LAMBDA_TARGET
from ..policies import Account, iot_rule_policy, processor_policy, remote_command_policy
from ._iam import service_role

__all__ = [
    "FUNCTIONS",
    "LAMBDA_MEMORY_MB",
    "LAMBDA_TIMEOUT_S",
    "Processing",
    "ProcessingArgs",
    "batch_rule_sql",
    "presence_rule_sql",
    "uplink_rule_sql",
]

#: The seed's sizing of every function.
LAMBDA_MEMORY_MB = 128
LAMBDA_TIMEOUT_S = 30
#: Role -> handler in ``lambdas.handlers``.
FUNCTIONS = {
    "processor": "lambdas.handlers.message_processor_handler",
    "remote-start": "lambdas.handlers.remote_start_handler",
    "remote-stop": "lambdas.handlers.remote_stop_handler",
}
# AWS asks for a visibility timeout of at least six times the function's
# timeout on an SQS event source, so a batch being retried is not redelivered.
_VISIBILITY_TIMEOUT_S = 6 * LAMBDA_TIMEOUT_S
_MAX_RECEIVES = 5
_BATCH_SIZE = 10


def uplink_rule_sql(prefix: str) -> str:
    return (
        "SELECT * AS message, topic(3) AS chargePointId, topic(4) AS protocol, "
        f"topic(5) AS route FROM '{prefix}/in/+/+/+'"
    )


def presence_rule_sql(prefix: str) -> str:
    return f"SELECT * AS presence, topic(3) AS chargePointId FROM '{prefix}/presence/+'"


def batch_rule_sql(prefix: str) -> str:
    # The batch is an object already: its "frames" stay at the top level.
    return f"SELECT *, topic(4) AS route FROM '{prefix}/batch/in/+'"


@dataclass(frozen=True, slots=True)
class ProcessingArgs:
    account: pulumi.Input[Account]
    topic_prefix: str
    code: pulumi.Archive
    iot_endpoint: pulumi.Input[str]
    charge_point_table: aws.dynamodb.Table
    transaction_table: aws.dynamodb.Table
    pending_call_table: aws.dynamodb.Table
    #: Role ("processor", "remote-start", "remote-stop", "iot-rule-errors") -> its log group.
    log_groups: dict[str, aws.cloudwatch.LogGroup]
    heartbeat_interval: int = 300
    log_level: str = "INFO"


class Processing(pulumi.ComponentResource):
    queue: aws.sqs.Queue
    dead_letter_queue: aws.sqs.Queue
    functions: dict[str, aws.lambda_.Function]

    def __init__(
        self, name: str, args: ProcessingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ocpp:infra:Processing", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account = pulumi.Output.from_input(args.account)

        self.dead_letter_queue = aws.sqs.Queue(
            f"{name}-dead-letters",
            message_retention_seconds=14 * 24 * 3600,
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        self.queue = aws.sqs.Queue(
            f"{name}-incoming",
            visibility_timeout_seconds=_VISIBILITY_TIMEOUT_S,
            sqs_managed_sse_enabled=True,
            redrive_policy=self.dead_letter_queue.arn.apply(
                lambda arn: json.dumps(
                    {"deadLetterTargetArn": arn, "maxReceiveCount": _MAX_RECEIVES}
                )
            ),
            opts=child,
        )

        environment = {
            "DYNAMODB_CHARGE_POINT_TABLE": args.charge_point_table.name,
            "DYNAMODB_TRANSACTION_TABLE": args.transaction_table.name,
            "DYNAMODB_PENDING_CALL_TABLE": args.pending_call_table.name,
            "IOT_ENDPOINT": args.iot_endpoint,
            "OCPP_TOPIC_PREFIX": args.topic_prefix,
            "OCPP_HEARTBEAT_INTERVAL": str(args.heartbeat_interval),
            "OCPP_LOG_LEVEL": args.log_level,
        }
        prefix = args.topic_prefix
        policies = {
            "processor": pulumi.Output.all(
                account,
                args.log_groups["processor"].arn,
                self.queue.arn,
                args.transaction_table.arn,
                args.pending_call_table.arn,
            ).apply(
                lambda v: processor_policy(
                    v[0],
                    prefix,
                    log_group_arn=v[1],
                    queue_arn=v[2],
                    transaction_table_arn=v[3],
                    pending_call_table_arn=v[4],
                )
            ),
            **{
                role: pulumi.Output.all(
                    account,
                    args.log_groups[role].arn,
                    args.charge_point_table.arn,
                    args.pending_call_table.arn,
                ).apply(
                    lambda v: remote_command_policy(
                        v[0],
                        prefix,
                        log_group_arn=v[1],
                        charge_point_table_arn=v[2],
                        pending_call_table_arn=v[3],
                    )
                )
                for role in ("remote-start", "remote-stop")
            },
        }

        self.functions = {}
        for role, handler in FUNCTIONS.items():
            function_role = service_role(
                f"{name}-{role}", "lambda.amazonaws.com", policies[role], parent=self
            )
            self.functions[role] = aws.lambda_.Function(
                f"{name}-{role}",
                runtime=LAMBDA_TARGET.runtime,
                architectures=["arm64"],
                memory_size=LAMBDA_MEMORY_MB,
                timeout=LAMBDA_TIMEOUT_S,
                handler=handler,
                code=args.code,
                role=function_role.arn,
                environment=aws.lambda_.FunctionEnvironmentArgs(variables=environment),
                logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                    log_format="JSON",
                    log_group=args.log_groups[role].name,
                    application_log_level=args.log_level.replace("WARNING", "WARN"),
                    system_log_level="WARN",
                ),
                opts=child,
            )

        aws.lambda_.EventSourceMapping(
            f"{name}-incoming",
            event_source_arn=self.queue.arn,
            function_name=self.functions["processor"].arn,
            batch_size=_BATCH_SIZE,
            # A charger waits for each answer: take a record as soon as it lands.
            maximum_batching_window_in_seconds=0,
            function_response_types=["ReportBatchItemFailures"],
            opts=child,
        )

        rule_role = service_role(
            f"{name}-iot-rules",
            "iot.amazonaws.com",
            pulumi.Output.all(self.queue.arn, args.log_groups["iot-rule-errors"].arn).apply(
                lambda v: iot_rule_policy(v[0], v[1])
            ),
            parent=self,
        )
        errors = aws.iot.TopicRuleErrorActionArgs(
            cloudwatch_logs=aws.iot.TopicRuleErrorActionCloudwatchLogsArgs(
                log_group_name=args.log_groups["iot-rule-errors"].name, role_arn=rule_role.arn
            )
        )
        rule_prefix = _rule_name(f"{pulumi.get_project()}_{pulumi.get_stack()}")
        for kind, sql in (
            ("uplinks", uplink_rule_sql(prefix)),
            ("presence", presence_rule_sql(prefix)),
            ("batches", batch_rule_sql(prefix)),
        ):
            aws.iot.TopicRule(
                f"{name}-{kind}",
                name=f"{rule_prefix}_{kind}",
                description=f"OCPP {kind} to the processor's queue",
                enabled=True,
                sql=sql,
                sql_version="2016-03-23",
                sqs=[
                    aws.iot.TopicRuleSqsArgs(
                        queue_url=self.queue.url, role_arn=rule_role.arn, use_base64=False
                    )
                ],
                error_action=errors,
                opts=child,
            )

        self.register_outputs(
            {
                "queueUrl": self.queue.url,
                "deadLetterQueueUrl": self.dead_letter_queue.url,
                **{f"{role}Function": f.name for role, f in self.functions.items()},
            }
        )


def _rule_name(text: str) -> str:
    """IoT rule names are ``[A-Za-z0-9_]+``; the stack's names may hold ``-`` and ``.``."""
    return re.sub(r"[^A-Za-z0-9_]", "_", text)
