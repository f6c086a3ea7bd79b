"""Logs, the dashboard and the alarms.

Log groups come first (``LogGroups``): every role's policy names its own
group, and every function writes to one. The dashboard and alarms come last
(``Monitoring``): they name what the other components made.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

__all__ = [
    "LOG_GROUPS",
    "METRICS_NAMESPACE",
    "LogGroups",
    "LogGroupsArgs",
    "Monitoring",
    "MonitoringArgs",
]

#: The custom metrics the gateway writes in CloudWatch Embedded Metric Format.
METRICS_NAMESPACE = "OCPPGateway"
#: One log group per part that writes logs.
LOG_GROUPS = ("gateway", "processor", "remote-start", "remote-stop", "iot-rule-errors")


@dataclass(frozen=True, slots=True)
class LogGroupsArgs:
    retention_days: int
    #: Groups are named ``/{prefix}/{part}``, e.g. ``/ocpp-gateway/dev/gateway``.
    prefix: str


class LogGroups(pulumi.ComponentResource):
    groups: dict[str, aws.cloudwatch.LogGroup]

    def __init__(
        self, name: str, args: LogGroupsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ocpp:infra:LogGroups", name, None, opts)
        self.groups = {
            part: aws.cloudwatch.LogGroup(
                f"{name}-{part}",
                name=f"/{args.prefix}/{part}",
                retention_in_days=args.retention_days,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for part in LOG_GROUPS
        }
        self.register_outputs({part: group.name for part, group in self.groups.items()})


@dataclass(frozen=True, slots=True)
class MonitoringArgs:
    region: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    service_name: pulumi.Input[str]
    load_balancer_suffix: pulumi.Input[str]
    target_group_suffix: pulumi.Input[str]
    queue_name: pulumi.Input[str]
    dead_letter_queue_name: pulumi.Input[str]
    #: Function role ("processor", "remote-start", ...) -> function name.
    function_names: dict[str, pulumi.Input[str]]
    #: Alarms go to an SNS topic; with an address, it is also mailed.
    alarm_email: str | None = None
    cpu_alarm_percent: float = 85.0


class Monitoring(pulumi.ComponentResource):
    """A dashboard of the seed's metrics and alarms on what needs a human."""

    dashboard_name: pulumi.Output[str]
    alarm_topic_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ocpp:infra:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        topic = aws.sns.Topic(f"{name}-alarms", opts=child)
        if args.alarm_email:
            aws.sns.TopicSubscription(
                f"{name}-alarms-email",
                topic=topic.arn,
                protocol="email",
                endpoint=args.alarm_email,
                opts=child,
            )
        actions = [topic.arn]

        def alarm(suffix: str, description: str, **metric: Any) -> None:
            """Above ``threshold`` for ``evaluation_periods`` minutes: tell the topic, and
            again when it is over."""
            aws.cloudwatch.MetricAlarm(
                f"{name}-{suffix}",
                alarm_description=description,
                period=60,
                comparison_operator="GreaterThanThreshold",
                alarm_actions=actions,
                ok_actions=actions,
                opts=child,
                **metric,
            )

        alarm(
            "dead-letters",
            "OCPP messages the processor failed five times wait in the DLQ",
            namespace="AWS/SQS",
            metric_name="ApproximateNumberOfMessagesVisible",
            dimensions={"QueueName": args.dead_letter_queue_name},
            statistic="Maximum",
            evaluation_periods=1,
            threshold=0,
            treat_missing_data="notBreaching",
        )
        for role, function_name in args.function_names.items():
            alarm(
                f"{role}-errors",
                f"The {role} function failed",
                namespace="AWS/Lambda",
                metric_name="Errors",
                dimensions={"FunctionName": function_name},
                statistic="Sum",
                evaluation_periods=1,
                threshold=0,
                treat_missing_data="notBreaching",
            )
        # Autoscaling holds the average at its target; an average well above it
        # for five minutes means the service is at maxTasks or cannot scale.
        alarm(
            "gateway-cpu",
            "Gateway tasks stay above their CPU target: at max tasks?",
            namespace="AWS/ECS",
            metric_name="CPUUtilization",
            dimensions={"ClusterName": args.cluster_name, "ServiceName": args.service_name},
            statistic="Average",
            evaluation_periods=5,
            threshold=args.cpu_alarm_percent,
            treat_missing_data="missing",
        )

        body = pulumi.Output.all(
            region=args.region,
            cluster=args.cluster_name,
            service=args.service_name,
            nlb=args.load_balancer_suffix,
            target_group=args.target_group_suffix,
            queue=args.queue_name,
            dlq=args.dead_letter_queue_name,
            functions=args.function_names,
        ).apply(lambda values: json.dumps(dashboard(**values)))
        board = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=pulumi.Output.concat(pulumi.get_project(), "-", pulumi.get_stack()),
            dashboard_body=body,
            opts=child,
        )
        self.dashboard_name = board.dashboard_name
        self.alarm_topic_arn = topic.arn
        self.register_outputs(
            {"dashboardName": self.dashboard_name, "alarmTopicArn": self.alarm_topic_arn}
        )


def _widget(
    title: str, metrics: list[list[Any]], region: str, *, stat: str = "Sum", x: int, y: int
) -> dict[str, Any]:
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": 12,
        "height": 6,
        "properties": {
            "title": title,
            "region": region,
            "stat": stat,
            "period": 60,
            "view": "timeSeries",
            "metrics": metrics,
        },
    }


def dashboard(
    *,
    region: str,
    cluster: str,
    service: str,
    nlb: str,
    target_group: str,
    queue: str,
    dlq: str,
    functions: dict[str, str],
) -> dict[str, Any]:
    """The dashboard body: the seed's custom metrics first, then what carries them.

    The gateway reports every 60 s from every task, so a one-minute ``Sum``
    of ``ActiveConnections`` is the fleet's connected chargers.
    """
    ns = METRICS_NAMESPACE
    protocols = ("ocpp1.6", "ocpp2.0", "ocpp2.0.1")
    widgets = [
        _widget("Active connections", [[ns, "ActiveConnections"]], region, x=0, y=0),
        _widget(
            "Protocol distribution",
            [[ns, "ActiveConnections", "Protocol", p] for p in protocols],
            region,
            x=12,
            y=0,
        ),
        _widget(
            "Messages per minute",
            [[ns, "MessagesIn"], [ns, "MessagesOut"]],
            region,
            x=0,
            y=6,
        ),
        _widget(
            "Handshakes and refusals per minute",
            [[ns, "Handshakes"], [ns, "HandshakeRejections"]],
            region,
            x=12,
            y=6,
        ),
        _widget(
            "Gateway CPU and memory (%)",
            [
                ["AWS/ECS", "CPUUtilization", "ClusterName", cluster, "ServiceName", service],
                ["AWS/ECS", "MemoryUtilization", "ClusterName", cluster, "ServiceName", service],
            ],
            region,
            stat="Average",
            x=0,
            y=12,
        ),
        _widget(
            "NLB flows and healthy tasks",
            [
                ["AWS/NetworkELB", "ActiveFlowCount", "LoadBalancer", nlb],
                ["AWS/NetworkELB", "NewFlowCount", "LoadBalancer", nlb],
                [
                    "AWS/NetworkELB",
                    "HealthyHostCount",
                    "TargetGroup",
                    target_group,
                    "LoadBalancer",
                    nlb,
                ],
            ],
            region,
            stat="Maximum",
            x=12,
            y=12,
        ),
        _widget(
            "Queue: waiting, oldest (s), dead letters",
            [
                ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", queue],
                ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", queue],
                ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", dlq],
            ],
            region,
            stat="Maximum",
            x=0,
            y=18,
        ),
        _widget(
            "Lambda invocations and errors",
            [
                ["AWS/Lambda", metric, "FunctionName", function]
                for function in functions.values()
                for metric in ("Invocations", "Errors")
            ],
            region,
            x=12,
            y=18,
        ),
        _widget(
            "Lambda duration p99 (ms)",
            [["AWS/Lambda", "Duration", "FunctionName", f] for f in functions.values()],
            region,
            stat="p99",
            x=0,
            y=24,
        ),
    ]
    return {"widgets": widgets}
