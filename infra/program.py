"""The whole stack: the components of ``infra/components``, composed from ``StackSettings``."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from .amazon_root_ca import amazon_root_ca_1
from .components import (
    Data,
    DataArgs,
    GatewayService,
    GatewayServiceArgs,
    Iot,
    IotArgs,
    LogGroups,
    LogGroupsArgs,
    Monitoring,
    MonitoringArgs,
    Network,
    NetworkArgs,
    Processing,
    ProcessingArgs,
)
from .components.observability import METRICS_NAMESPACE
from .policies import Account
from .settings import StackSettings

__all__ = ["build"]


def build(settings: StackSettings, code: pulumi.Archive) -> dict[str, pulumi.Output[str]]:
    """Declare every resource; return the stack outputs (names and addresses, never secrets)."""
    region = aws.get_region_output().region
    account = pulumi.Output.all(
        aws.get_partition_output().partition,
        region,
        aws.get_caller_identity_output().account_id,
    ).apply(lambda v: Account(partition=v[0], region=v[1], account_id=v[2]))

    logs = LogGroups(
        "logs",
        LogGroupsArgs(
            retention_days=settings.log_retention_days,
            prefix=f"{pulumi.get_project()}/{pulumi.get_stack()}",
        ),
    )
    network = Network("network", NetworkArgs(nat_gateways=settings.nat_gateways))
    data = Data("data", DataArgs(protect=settings.protect_data))
    iot = Iot(
        "iot",
        IotArgs(account=account, topic_prefix=settings.topic_prefix, root_ca=amazon_root_ca_1()),
    )
    processing = Processing(
        "processing",
        ProcessingArgs(
            account=account,
            topic_prefix=settings.topic_prefix,
            code=code,
            iot_endpoint=iot.endpoint,
            charge_point_table=data.charge_point_table,
            transaction_table=data.transaction_table,
            pending_call_table=data.pending_call_table,
            log_groups=logs.groups,
            heartbeat_interval=settings.heartbeat_interval,
            log_level=settings.log_level,
        ),
    )
    gateway = GatewayService(
        "gateway",
        GatewayServiceArgs(
            vpc_id=network.vpc_id,
            public_subnet_ids=list(network.public_subnet_ids),
            private_subnet_ids=list(network.private_subnet_ids),
            region=region,
            iot_endpoint=iot.endpoint,
            secret_arns=dict(iot.secret_arns),
            charge_point_table=data.charge_point_table,
            log_group=logs.groups["gateway"],
            topic_prefix=settings.topic_prefix,
            image_tag=settings.image_tag,
            metrics_namespace=METRICS_NAMESPACE,
            security_profile=settings.gateway_security_profile,
            tls_certificate_arn=settings.tls_certificate_arn,
            mutual_tls=settings.mutual_tls,
            plain_listener=settings.plain_listener,
            architecture=settings.gateway_architecture,
            min_tasks=settings.min_tasks,
            max_tasks=settings.max_tasks,
            cpu_target=settings.cpu_target,
            scale_cooldown=settings.scale_cooldown,
            drain_seconds=settings.drain_seconds,
            stop_timeout=settings.stop_timeout,
            log_level=settings.log_level,
        ),
    )
    monitoring = Monitoring(
        "monitoring",
        MonitoringArgs(
            region=region,
            cluster_name=gateway.cluster_name,
            service_name=gateway.service_name,
            load_balancer_suffix=gateway.load_balancer_suffix,
            target_group_suffix=gateway.target_group_suffix,
            queue_name=processing.queue.name,
            dead_letter_queue_name=processing.dead_letter_queue.name,
            function_names={role: f.name for role, f in processing.functions.items()},
            alarm_email=settings.alarm_email,
        ),
    )

    scheme = "wss" if settings.security_profile >= 2 else "ws"
    return {
        "chargePointUrl": pulumi.Output.concat(
            scheme, "://", gateway.load_balancer_dns, "/{chargePointId}"
        ),
        "loadBalancerDns": gateway.load_balancer_dns,
        "repositoryUrl": gateway.repository_url,
        "clusterName": gateway.cluster_name,
        "serviceName": gateway.service_name,
        "iotEndpoint": iot.endpoint,
        "chargePointTable": data.charge_point_table.name,
        "transactionTable": data.transaction_table.name,
        "pendingCallTable": data.pending_call_table.name,
        "queueUrl": processing.queue.url,
        "deadLetterQueueUrl": processing.dead_letter_queue.url,
        "processorFunction": processing.functions["processor"].name,
        "remoteStartFunction": processing.functions["remote-start"].name,
        "remoteStopFunction": processing.functions["remote-stop"].name,
        "gatewayLogGroup": logs.groups["gateway"].name,
        "dashboardName": monitoring.dashboard_name,
        "alarmTopicArn": monitoring.alarm_topic_arn,
        "region": region,
    }
