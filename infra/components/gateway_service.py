"""The gateway on ECS Fargate behind an internet-facing NLB, scaled on CPU.

How a task stops (scale-in, deployment): ECS deregisters it from the target
group, the NLB stops sending it new connections and keeps the open ones for
the deregistration delay, ECS sends SIGTERM, and the gateway drains its bus
and closes every charger with 1001 so that it reconnects to another task.
ECS waits ``stop_timeout`` for that before SIGKILL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from ..policies import gateway_execution_policy, gateway_task_policy
from ..settings import MutualTls
from ._iam import service_role
from .network import VPC_CIDR

__all__ = [
    "CONTAINER",
    "GATEWAY_PORT",
    "GatewayService",
    "GatewayServiceArgs",
    "TASK_CPU",
    "TASK_MEMORY",
    "NOFILE",
]

CONTAINER = "gateway"
GATEWAY_PORT = 8080
#: The seed's task: 0.25 vCPU, 512 MiB, 65,536 descriptors (one per charger).
TASK_CPU = 256
TASK_MEMORY = 512
NOFILE = 65536
# TLS 1.2 and 1.3 with forward secrecy only (what OCPP security profile 2 asks).
_TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
_SCRATCH = "scratch"


@dataclass(frozen=True, slots=True)
class GatewayServiceArgs:
    vpc_id: pulumi.Input[str]
    public_subnet_ids: list[pulumi.Input[str]]
    private_subnet_ids: list[pulumi.Input[str]]
    region: pulumi.Input[str]
    iot_endpoint: pulumi.Input[str]
    #: ``IOT_...`` -> Secrets Manager ARN, injected into the container by ECS.
    secret_arns: dict[str, pulumi.Input[str]]
    charge_point_table: aws.dynamodb.Table
    log_group: aws.cloudwatch.LogGroup
    topic_prefix: str
    image_tag: str
    metrics_namespace: str
    security_profile: int = 0
    tls_certificate_arn: str | None = None
    mutual_tls: MutualTls | None = None
    plain_listener: bool = True
    architecture: str = "X86_64"
    min_tasks: int = 1
    max_tasks: int = 20
    cpu_target: float = 60.0
    scale_cooldown: int = 30
    drain_seconds: int = 10
    stop_timeout: int = 30
    log_level: str = "INFO"
    protocols: tuple[str, ...] = field(default=("ocpp1.6", "ocpp2.0", "ocpp2.0.1"))


class GatewayService(pulumi.ComponentResource):
    repository_url: pulumi.Output[str]
    load_balancer_dns: pulumi.Output[str]
    load_balancer_suffix: pulumi.Output[str]
    target_group_suffix: pulumi.Output[str]
    cluster_name: pulumi.Output[str]
    service_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: GatewayServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ocpp:infra:GatewayService", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        repository = aws.ecr.Repository(
            f"{name}-image",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
                scan_on_push=True
            ),
            force_delete=True,
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-image",
            repository=repository.name,
            policy=json.dumps(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "description": "keep the 20 newest images",
                            "selection": {
                                "tagStatus": "any",
                                "countType": "imageCountMoreThan",
                                "countNumber": 20,
                            },
                            "action": {"type": "expire"},
                        }
                    ]
                }
            ),
            opts=child,
        )
        cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")],
            opts=child,
        )

        # -- IAM: the execution role starts the task, the task role is the process.
        secret_arns = dict(args.secret_arns)
        if args.mutual_tls is not None:
            secret_arns.update(_tls_secrets(args.mutual_tls))
        execution_role = service_role(
            f"{name}-execution",
            "ecs-tasks.amazonaws.com",
            pulumi.Output.all(repository.arn, args.log_group.arn, *secret_arns.values()).apply(
                lambda v: gateway_execution_policy(v[0], v[1], v[2:])
            ),
            parent=self,
        )
        task_role = service_role(
            f"{name}-task",
            "ecs-tasks.amazonaws.com",
            args.charge_point_table.arn.apply(gateway_task_policy),
            parent=self,
        )

        # -- Network: chargers reach the tasks only through the NLB.
        security_group = aws.ec2.SecurityGroup(
            f"{name}-tasks",
            description="OCPP gateway tasks: WebSockets from the NLB inside the VPC",
            vpc_id=args.vpc_id,
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    description="chargers and health checks, through the NLB",
                    protocol="tcp",
                    from_port=GATEWAY_PORT,
                    to_port=GATEWAY_PORT,
                    cidr_blocks=[VPC_CIDR],
                )
            ],
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    description="AWS IoT Core, DynamoDB, ECR and logs",
                    protocol="-1",
                    from_port=0,
                    to_port=0,
                    cidr_blocks=["0.0.0.0/0"],
                )
            ],
            opts=child,
        )
        balancer = aws.lb.LoadBalancer(
            f"{name}-nlb",
            load_balancer_type="network",
            internal=False,
            ip_address_type="ipv4",
            subnets=args.public_subnet_ids,
            enable_cross_zone_load_balancing=True,
            opts=child,
        )
        target_group = aws.lb.TargetGroup(
            f"{name}-tasks",
            port=GATEWAY_PORT,
            protocol="TCP",
            target_type="ip",
            vpc_id=args.vpc_id,
            # The tasks' security group admits the VPC: traffic must come from the NLB's address.
            preserve_client_ip="false",
            deregistration_delay=args.drain_seconds,
            health_check=_health_check(args),
            opts=child,
        )
        forward = [
            aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=target_group.arn)
        ]
        listeners = [
            aws.lb.Listener(
                f"{name}-{listener.protocol.lower()}-{listener.port}",
                load_balancer_arn=balancer.arn,
                port=listener.port,
                protocol=listener.protocol,
                certificate_arn=listener.certificate_arn,
                ssl_policy=_TLS_POLICY if listener.certificate_arn else None,
                default_actions=forward,
                opts=child,
            )
            for listener in _listeners(args)
        ]

        # -- The task.
        image = repository.repository_url.apply(lambda url: f"{url}:{args.image_tag}")
        container = pulumi.Output.all(
            image=image,
            region=args.region,
            endpoint=args.iot_endpoint,
            table=args.charge_point_table.name,
            log_group=args.log_group.name,
            secrets=secret_arns,
        ).apply(lambda v: json.dumps([container_definition(args, **v)]))
        task = aws.ecs.TaskDefinition(
            f"{name}-task",
            family=f"{pulumi.get_project()}-{pulumi.get_stack()}-gateway",
            cpu=str(TASK_CPU),
            memory=str(TASK_MEMORY),
            network_mode="awsvpc",
            requires_compatibilities=["FARGATE"],
            runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
                operating_system_family="LINUX", cpu_architecture=args.architecture
            ),
            execution_role_arn=execution_role.arn,
            task_role_arn=task_role.arn,
            container_definitions=container,
            volumes=[aws.ecs.TaskDefinitionVolumeArgs(name=_SCRATCH)],
            opts=child,
        )
        service = aws.ecs.Service(
            f"{name}-service",
            cluster=cluster.arn,
            task_definition=task.arn,
            desired_count=args.min_tasks,
            launch_type="FARGATE",
            network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                subnets=args.private_subnet_ids,
                security_groups=[security_group.id],
                assign_public_ip=False,
            ),
            load_balancers=[
                aws.ecs.ServiceLoadBalancerArgs(
                    target_group_arn=target_group.arn,
                    container_name=CONTAINER,
                    container_port=GATEWAY_PORT,
                )
            ],
            health_check_grace_period_seconds=30,
            # Roll tasks one step at a time; a failed rollout goes back by itself.
            deployment_minimum_healthy_percent=100,
            deployment_maximum_percent=200,
            deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(
                enable=True, rollback=True
            ),
            propagate_tags="SERVICE",
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=listeners,
                # Auto-scaling owns the task count once the service exists.
                ignore_changes=["desiredCount"],
            ),
        )
        scaling = aws.appautoscaling.Target(
            f"{name}-scaling",
            service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=pulumi.Output.concat("service/", cluster.name, "/", service.name),
            min_capacity=args.min_tasks,
            max_capacity=args.max_tasks,
            opts=child,
        )
        aws.appautoscaling.Policy(
            f"{name}-cpu",
            policy_type="TargetTrackingScaling",
            service_namespace=scaling.service_namespace,
            scalable_dimension=scaling.scalable_dimension,
            resource_id=scaling.resource_id,
            target_tracking_scaling_policy_configuration=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                target_value=args.cpu_target,
                predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                    predefined_metric_type="ECSServiceAverageCPUUtilization"
                ),
                scale_in_cooldown=args.scale_cooldown,
                scale_out_cooldown=args.scale_cooldown,
            ),
            opts=child,
        )

        self.repository_url = repository.repository_url
        self.load_balancer_dns = balancer.dns_name
        self.load_balancer_suffix = balancer.arn_suffix
        self.target_group_suffix = target_group.arn_suffix
        self.cluster_name = cluster.name
        self.service_name = service.name
        self.register_outputs(
            {
                "repositoryUrl": self.repository_url,
                "loadBalancerDns": self.load_balancer_dns,
                "clusterName": self.cluster_name,
                "serviceName": self.service_name,
            }
        )


@dataclass(frozen=True, slots=True)
class _Listener:
    port: int
    protocol: str
    certificate_arn: str | None = None


def _listeners(args: GatewayServiceArgs) -> list[_Listener]:
    """Plain TCP 80; TLS 443 ended at the NLB (profile 2) or passed through (profile 3)."""
    listeners = [_Listener(80, "TCP")] if args.plain_listener else []
    if args.tls_certificate_arn is not None:
        listeners.append(_Listener(443, "TLS", args.tls_certificate_arn))
    if args.mutual_tls is not None:
        listeners.append(_Listener(443, "TCP"))
    return listeners


def _tls_secrets(mutual: MutualTls) -> dict[str, str]:
    return {
        "OCPP_TLS_CERTIFICATE_CHAIN_PEM": mutual.certificate_chain_secret,
        "OCPP_TLS_PRIVATE_KEY_PEM": mutual.private_key_secret,
        "OCPP_TLS_CLIENT_CA_PEM": mutual.client_ca_secret,
    }


def _health_check(args: GatewayServiceArgs) -> aws.lb.TargetGroupHealthCheckArgs:
    """``GET /health`` answers 503 while the task's MQTT bus is down: such a
    task gets no new chargers. With mutual TLS the gateway's port speaks only
    TLS with client certificates, so the NLB can check only that it listens."""
    if args.mutual_tls is not None:
        protocol, path, matcher = "TCP", None, None
    else:
        protocol, path, matcher = "HTTP", "/health", "200"
    return aws.lb.TargetGroupHealthCheckArgs(
        protocol=protocol,
        path=path,
        matcher=matcher,
        port=str(GATEWAY_PORT),
        interval=10,
        healthy_threshold=2,
        unhealthy_threshold=2,
    )


def container_definition(
    args: GatewayServiceArgs,
    *,
    image: str,
    region: str,
    endpoint: str,
    table: str,
    log_group: str,
    secrets: dict[str, str],
) -> dict[str, object]:
    """The gateway container: the seed's environment, its secrets from Secrets Manager."""
    environment = {
        "AWS_REGION": region,
        "DYNAMODB_CHARGE_POINT_TABLE": table,
        "IOT_ENDPOINT": endpoint,
        "IOT_PORT": "8883",
        "OCPP_PROTOCOLS": ",".join(args.protocols),
        "OCPP_GATEWAY_HOST": "0.0.0.0",
        "OCPP_GATEWAY_PORT": str(GATEWAY_PORT),
        "OCPP_TOPIC_PREFIX": args.topic_prefix,
        "OCPP_SECURITY_PROFILE": str(args.security_profile),
        "OCPP_METRICS_NAMESPACE": args.metrics_namespace,
        "OCPP_LOG_LEVEL": args.log_level,
    }
    return {
        "name": CONTAINER,
        "image": image,
        "essential": True,
        "portMappings": [
            {"containerPort": GATEWAY_PORT, "hostPort": GATEWAY_PORT, "protocol": "tcp"}
        ],
        "environment": [{"name": k, "value": v} for k, v in sorted(environment.items())],
        "secrets": [{"name": k, "valueFrom": v} for k, v in sorted(secrets.items())],
        "ulimits": [{"name": "nofile", "softLimit": NOFILE, "hardLimit": NOFILE}],
        "stopTimeout": args.stop_timeout,
        # Nothing in the image changes at run time; /tmp is the one scratch
        # folder (the mutual-TLS PEM files the gateway writes for OpenSSL).
        "readonlyRootFilesystem": True,
        "mountPoints": [{"sourceVolume": _SCRATCH, "containerPath": "/tmp", "readOnly": False}],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": log_group,
                "awslogs-region": region,
                "awslogs-stream-prefix": CONTAINER,
                # Never block the event loop on a slow log pipe.
                "mode": "non-blocking",
                "max-buffer-size": "4m",
            },
        },
    }
