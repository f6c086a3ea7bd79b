"""The deployed system's shape, checked on the program under Pulumi's mocks."""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest

from gateway.mqtt_settings import new_gateway_id
from infra.components.gateway_service import NOFILE
from infra.components.iot import GATEWAY_SECRETS
from infra.components.network import VPC_CIDR
from infra.components.observability import METRICS_NAMESPACE
from infra.policies import GATEWAY_CLIENT_PREFIX
from infra.settings import GATEWAY_DRAIN_SECONDS
from ocppgw.gateway_service import DRAIN_TIMEOUT
from ocppj import uplink_batch_subscription
from processor.adapters.dynamodb_tables import (
    charge_point_table_spec,
    pending_call_table_spec,
    transaction_table_spec,
)

from .stack import CERTIFICATE, PRIVATE_KEY, PUBLIC_KEY, Resource, Stack, run_stack

ACM = "arn:aws:acm:eu-west-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:gateway-tls-"
MUTUAL = {
    "securityProfile": "3",
    "tlsCertificateChainSecret": SECRET + "chain",
    "tlsPrivateKeySecret": SECRET + "key",
    "tlsClientCaSecret": SECRET + "ca",
}


@pytest.fixture(scope="module")
def stack() -> Stack:
    return run_stack()


def container(stack: Stack) -> dict[str, Any]:
    (definition,) = stack.one("aws:ecs/taskDefinition:TaskDefinition").json("containerDefinitions")
    return definition  # type: ignore[no-any-return]


def environment(definition: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in definition["environment"]}


# How Pulumi marks a secret value on the wire (its "signature" key).
SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d"


def secret_value(wire: Any) -> str:
    """The value of an input Pulumi sends as a secret; fails if it is not one."""
    assert isinstance(wire, dict) and wire.get(SECRET_SIGNATURE), f"not a secret: {wire!r}"
    return wire["value"]  # type: ignore[no-any-return]


def policy_of(stack: Stack, role: str) -> dict[str, Any]:
    return stack.one("aws:iam/rolePolicy:RolePolicy", role).json("policy")


def grants(policy: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (action, resource)
        for statement in policy["Statement"]
        for action in statement["Action"]
        for resource in statement["Resource"]
    }


# -- network --------------------------------------------------------------------------


def test_vpc_spans_two_zones_with_public_and_private_subnets(stack: Stack) -> None:
    assert stack.one("aws:ec2/vpc:Vpc").inputs["cidrBlock"] == VPC_CIDR == "10.0.0.0/16"
    subnets = stack.of_type("aws:ec2/subnet:Subnet")
    public = [s for s in subnets if "public" in s.name]
    private = [s for s in subnets if "private" in s.name]
    assert len(public) == len(private) == 2
    for group in (public, private):
        assert {s.inputs["availabilityZone"] for s in group} == {"eu-west-1a", "eu-west-1b"}
    assert not any(s.inputs.get("mapPublicIpOnLaunch") for s in subnets)
    stack.one("aws:ec2/internetGateway:InternetGateway")


def test_public_subnets_route_to_the_internet_gateway_and_private_ones_to_nat(stack: Stack) -> None:
    public = stack.one("aws:ec2/routeTable:RouteTable", "network-public")
    assert public.inputs["routes"] == [{"cidrBlock": "0.0.0.0/0", "gatewayId": "network-igw-id"}]
    for index in range(2):
        private = stack.one("aws:ec2/routeTable:RouteTable", f"network-private-{index}")
        assert private.inputs["routes"] == [
            {"cidrBlock": "0.0.0.0/0", "natGatewayId": "network-nat-0-id"}
        ]
    nat = stack.one("aws:ec2/natGateway:NatGateway")
    assert nat.inputs["subnetId"] == "network-public-0-id"


def test_nat_gateway_count_is_configurable() -> None:
    stack = run_stack({"natGateways": "2"})
    assert len(stack.of_type("aws:ec2/natGateway:NatGateway")) == 2
    routes = [
        stack.one("aws:ec2/routeTable:RouteTable", f"network-private-{i}").inputs["routes"][0]
        for i in range(2)
    ]
    assert [r["natGatewayId"] for r in routes] == ["network-nat-0-id", "network-nat-1-id"]


# -- load balancer -----------------------------------------------------------------------


def test_nlb_is_internet_facing_in_the_public_subnets_without_a_fixed_name(stack: Stack) -> None:
    nlb = stack.one("aws:lb/loadBalancer:LoadBalancer")
    assert nlb.inputs["loadBalancerType"] == "network"
    assert nlb.inputs["internal"] is False
    assert sorted(nlb.inputs["subnets"]) == ["network-public-0-id", "network-public-1-id"]
    assert "name" not in nlb.inputs and "namePrefix" not in nlb.inputs


def test_plain_stack_listens_on_tcp_80_only(stack: Stack) -> None:
    (listener,) = stack.of_type("aws:lb/listener:Listener")
    assert (listener.inputs["port"], listener.inputs["protocol"]) == (80, "TCP")
    (action,) = listener.inputs["defaultActions"]
    assert action == {
        "type": "forward",
        "targetGroupArn": "arn:aws:lb:eu-west-1:123456789012:gateway-tasks",
    }


def test_target_group_forwards_tcp_8080_with_a_health_check_and_the_drain_delay(
    stack: Stack,
) -> None:
    group = stack.one("aws:lb/targetGroup:TargetGroup")
    assert (group.inputs["port"], group.inputs["protocol"]) == (8080, "TCP")
    assert group.inputs["targetType"] == "ip"
    assert group.inputs["healthCheck"]["port"] == "8080"
    assert group.inputs["healthCheck"]["protocol"] == "HTTP"
    assert group.inputs["healthCheck"]["path"] == "/health"
    assert group.inputs["deregistrationDelay"] == GATEWAY_DRAIN_SECONDS
    # The NLB's source address, not the charger's: the tasks admit the VPC only.
    assert group.inputs["preserveClientIp"] == "false"


def test_drain_time_is_the_gateway_processs_own() -> None:
    assert GATEWAY_DRAIN_SECONDS == DRAIN_TIMEOUT


def test_security_profile_2_ends_tls_at_the_nlb() -> None:
    stack = run_stack({"securityProfile": "2", "tlsCertificateArn": ACM})
    listeners = {x.inputs["port"]: x.inputs for x in stack.of_type("aws:lb/listener:Listener")}
    assert set(listeners) == {443}  # Basic auth never travels in clear text
    assert listeners[443]["protocol"] == "TLS"
    assert listeners[443]["certificateArn"] == ACM
    assert "TLS13-1-2" in listeners[443]["sslPolicy"]
    # Behind the TLS listener the gateway checks Basic auth on plain TCP.
    assert environment(container(stack))["OCPP_SECURITY_PROFILE"] == "1"
    assert stack.outputs["chargePointUrl"].startswith("wss://")


def test_tls_and_plain_listeners_side_by_side_when_asked() -> None:
    stack = run_stack({"securityProfile": "1", "tlsCertificateArn": ACM})
    ports = sorted(x.inputs["port"] for x in stack.of_type("aws:lb/listener:Listener"))
    assert ports == [80, 443]


def test_security_profile_3_passes_tls_through_to_the_gateway() -> None:
    stack = run_stack(MUTUAL)
    (listener,) = stack.of_type("aws:lb/listener:Listener")
    assert (listener.inputs["port"], listener.inputs["protocol"]) == (443, "TCP")
    assert "certificateArn" not in listener.inputs
    definition = container(stack)
    assert environment(definition)["OCPP_SECURITY_PROFILE"] == "3"
    secrets = {s["name"]: s["valueFrom"] for s in definition["secrets"]}
    assert secrets["OCPP_TLS_CERTIFICATE_CHAIN_PEM"] == SECRET + "chain"
    assert secrets["OCPP_TLS_PRIVATE_KEY_PEM"] == SECRET + "key"
    assert secrets["OCPP_TLS_CLIENT_CA_PEM"] == SECRET + "ca"
    # The NLB cannot speak mutual TLS to the gateway: it checks the port.
    health = stack.one("aws:lb/targetGroup:TargetGroup").inputs["healthCheck"]
    assert health["protocol"] == "TCP"
    execution = grants(policy_of(stack, "gateway-execution"))
    assert ("secretsmanager:GetSecretValue", SECRET + "ca") in execution


# -- gateway service ------------------------------------------------------------------------


def test_cluster_has_container_insights(stack: Stack) -> None:
    settings = stack.one("aws:ecs/cluster:Cluster").inputs["settings"]
    assert {"name": "containerInsights", "value": "enabled"} in settings


def test_task_is_the_seeds_fargate_size(stack: Stack) -> None:
    task = stack.one("aws:ecs/taskDefinition:TaskDefinition").inputs
    assert (task["cpu"], task["memory"]) == ("256", "512")
    assert task["requiresCompatibilities"] == ["FARGATE"]
    assert task["networkMode"] == "awsvpc"
    assert task["executionRoleArn"].endswith(":gateway-execution")
    assert task["taskRoleArn"].endswith(":gateway-task")


def test_container_has_65536_descriptors_port_8080_and_a_drain_stop_timeout(stack: Stack) -> None:
    definition = container(stack)
    assert definition["ulimits"] == [{"name": "nofile", "softLimit": 65536, "hardLimit": 65536}]
    assert NOFILE == 65536
    assert definition["portMappings"] == [
        {"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}
    ]
    assert GATEWAY_DRAIN_SECONDS < definition["stopTimeout"] <= 120
    assert definition["image"].endswith("gateway-image-0a1b2c3:latest")
    assert (
        definition["logConfiguration"]["options"]["awslogs-group"] == "/ocpp-gateway/test/gateway"
    )


def test_image_tag_is_configuration() -> None:
    assert container(run_stack({"imageTag": "v1.2.3"}))["image"].endswith(":v1.2.3")


def test_container_has_the_seeds_environment(stack: Stack) -> None:
    env = environment(container(stack))
    assert env["AWS_REGION"] == "eu-west-1"
    assert env["DYNAMODB_CHARGE_POINT_TABLE"] == "ChargePointTable-0a1b2c3"
    assert env["IOT_ENDPOINT"] == "a1b2c3d4e5f6g7-ats.iot.eu-west-1.amazonaws.com"
    assert env["IOT_PORT"] == "8883"
    assert env["OCPP_PROTOCOLS"] == "ocpp1.6,ocpp2.0,ocpp2.0.1"
    assert env["OCPP_GATEWAY_PORT"] == "8080"
    assert env["OCPP_METRICS_NAMESPACE"] == METRICS_NAMESPACE
    assert env["OCPP_SECURITY_PROFILE"] == "0"
    # No secret travels as a plain environment value.
    assert not any("PRIVATE KEY" in value or "CERTIFICATE" in value for value in env.values())


def test_the_four_iot_secrets_are_injected_from_secrets_manager(stack: Stack) -> None:
    secrets = {s["name"]: s["valueFrom"] for s in container(stack)["secrets"]}
    assert set(secrets) == set(GATEWAY_SECRETS)
    for name, arn in secrets.items():
        assert arn.startswith("arn:aws:secretsmanager:"), name
    versions = {
        v.name: secret_value(v.inputs["secretString"])
        for v in stack.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    }
    assert versions["iot-gateway-private-key"] == PRIVATE_KEY
    assert versions["iot-gateway-public-key"] == PUBLIC_KEY
    assert versions["iot-gateway-certificate"] == CERTIFICATE
    assert "Amazon" not in versions["iot-amazon-root-ca"]  # PEM only, no bundle comments
    assert versions["iot-amazon-root-ca"].startswith("-----BEGIN CERTIFICATE-----")


def test_service_runs_in_private_subnets_without_public_addresses(stack: Stack) -> None:
    service = stack.one("aws:ecs/service:Service").inputs
    assert service["launchType"] == "FARGATE"
    network = service["networkConfiguration"]
    assert sorted(network["subnets"]) == ["network-private-0-id", "network-private-1-id"]
    assert network["assignPublicIp"] is False
    assert network["securityGroups"] == ["gateway-tasks-id"]
    (balancer,) = service["loadBalancers"]
    assert (balancer["containerName"], balancer["containerPort"]) == ("gateway", 8080)


def test_service_scales_1_to_20_tasks_on_60_percent_cpu_with_30_s_cooldowns(stack: Stack) -> None:
    target = stack.one("aws:appautoscaling/target:Target").inputs
    assert (target["minCapacity"], target["maxCapacity"]) == (1, 20)
    assert target["scalableDimension"] == "ecs:service:DesiredCount"
    policy = stack.one("aws:appautoscaling/policy:Policy").inputs
    assert policy["policyType"] == "TargetTrackingScaling"
    tracking = policy["targetTrackingScalingPolicyConfiguration"]
    assert tracking["targetValue"] == 60
    assert tracking["scaleInCooldown"] == tracking["scaleOutCooldown"] == 30
    assert (
        tracking["predefinedMetricSpecification"]["predefinedMetricType"]
        == "ECSServiceAverageCPUUtilization"
    )


def test_task_security_group_admits_8080_from_the_vpc_only(stack: Stack) -> None:
    group = stack.one("aws:ec2/securityGroup:SecurityGroup", "gateway-tasks").inputs
    (rule,) = group["ingress"]
    assert (rule["protocol"], rule["fromPort"], rule["toPort"]) == ("tcp", 8080, 8080)
    assert rule["cidrBlocks"] == [VPC_CIDR]


@pytest.mark.parametrize("config", [{}, MUTUAL], ids=["plain", "mutual-tls"])
def test_no_security_group_admits_the_internet(config: dict[str, str]) -> None:
    for group in run_stack(config).of_type("aws:ec2/securityGroup:SecurityGroup"):
        for rule in group.inputs.get("ingress", []):
            assert "0.0.0.0/0" not in rule.get("cidrBlocks", []), group.name
            assert "::/0" not in rule.get("ipv6CidrBlocks", []), group.name
    # Nor does any standalone rule.
    assert not run_stack(config).of_type(
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
    )


# -- IoT -----------------------------------------------------------------------------------


def test_iot_certificate_is_active_and_carries_the_gateway_policy(stack: Stack) -> None:
    assert stack.one("aws:iot/certificate:Certificate").inputs["active"] is True
    attachment = stack.one("aws:iot/policyAttachment:PolicyAttachment").inputs
    assert attachment["target"].endswith(":iot-gateway")
    assert attachment["policy"] == "iot-gateway-0a1b2c3"


def test_rules_forward_uplinks_presence_and_batches_to_the_queue(stack: Stack) -> None:
    rules = {r.name: r.inputs for r in stack.of_type("aws:iot/topicRule:TopicRule")}
    assert set(rules) == {"processing-uplinks", "processing-presence", "processing-batches"}
    assert rules["processing-uplinks"]["sql"] == (
        "SELECT * AS message, topic(3) AS chargePointId, topic(4) AS protocol, "
        "topic(5) AS route FROM 'ocpp/in/+/+/+'"
    )
    assert rules["processing-presence"]["sql"] == (
        "SELECT * AS presence, topic(3) AS chargePointId FROM 'ocpp/presence/+'"
    )
    assert rules["processing-batches"]["sql"] == (
        "SELECT *, topic(4) AS route FROM 'ocpp/batch/in/+'"
    )
    # The rule reads the topic the gateway publishes its batches on.
    assert rules["processing-batches"]["sql"].endswith(f"'{uplink_batch_subscription('ocpp')}'")
    assert len({rule["name"] for rule in rules.values()}) == 3
    queue_url = stack.outputs["queueUrl"]
    for rule in rules.values():
        assert rule["enabled"] is True
        assert rule["sqlVersion"] == "2016-03-23"
        (action,) = rule["sqs"]
        assert action["queueUrl"] == queue_url
        assert action["useBase64"] is False
        assert (
            rule["errorAction"]["cloudwatchLogs"]["logGroupName"]
            == "/ocpp-gateway/test/iot-rule-errors"
        )
        assert rule["name"].replace("_", "").isalnum()


def test_topic_prefix_reaches_rules_policy_and_every_process() -> None:
    stack = run_stack({"topicPrefix": "evse"})
    for rule in stack.of_type("aws:iot/topicRule:TopicRule"):
        assert "FROM 'evse/" in rule.inputs["sql"]
    assert environment(container(stack))["OCPP_TOPIC_PREFIX"] == "evse"
    for function in stack.of_type("aws:lambda/function:Function"):
        assert function.inputs["environment"]["variables"]["OCPP_TOPIC_PREFIX"] == "evse"
    policy = json.dumps(stack.one("aws:iot/policy:Policy").json("policy"))
    assert "topic/evse/in/" in policy and "/ocpp/" not in policy
    assert "topic/evse/batch/in/" in policy
    processor = json.dumps(policy_of(stack, "processing-processor"))
    assert "topic/evse/batch/out/*" in processor and "/ocpp/" not in processor


# -- processing -----------------------------------------------------------------------------


def test_queue_redrives_to_a_dead_letter_queue(stack: Stack) -> None:
    queue = stack.one("aws:sqs/queue:Queue", "processing-incoming").inputs
    redrive = json.loads(queue["redrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(":processing-dead-letters-0a1b2c3")
    assert redrive["maxReceiveCount"] == 5
    # At least six times the function's timeout, as AWS asks of an SQS event source.
    assert queue["visibilityTimeoutSeconds"] >= 6 * 30


@pytest.mark.parametrize(
    ("role", "handler"),
    [
        ("processor", "message_processor_handler"),
        ("remote-start", "remote_start_handler"),
        ("remote-stop", "remote_stop_handler"),
    ],
)
def test_functions_are_arm64_python_128_mb_30_s(stack: Stack, role: str, handler: str) -> None:
    function = stack.one("aws:lambda/function:Function", f"processing-{role}").inputs
    assert function["architectures"] == ["arm64"]
    assert function["runtime"] == "python3.12"
    assert function["memorySize"] == 128
    assert function["timeout"] == 30
    assert function["handler"] == f"lambdas.handlers.{handler}"
    module, name = function["handler"].rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module), name))
    variables = function["environment"]["variables"]
    assert variables["DYNAMODB_CHARGE_POINT_TABLE"] == "ChargePointTable-0a1b2c3"
    assert variables["DYNAMODB_TRANSACTION_TABLE"] == "TransactionTable-0a1b2c3"
    assert variables["DYNAMODB_PENDING_CALL_TABLE"] == "PendingCallTable-0a1b2c3"
    assert variables["IOT_ENDPOINT"].endswith("-ats.iot.eu-west-1.amazonaws.com")
    # Lambda sets AWS_REGION itself and refuses a function that sets it.
    assert "AWS_REGION" not in variables
    logging = function["loggingConfig"]
    assert logging["logFormat"] == "JSON"
    assert logging["logGroup"] == f"/ocpp-gateway/test/{role}"


def test_processor_reads_the_queue_with_partial_batch_responses(stack: Stack) -> None:
    mapping = stack.one("aws:lambda/eventSourceMapping:EventSourceMapping").inputs
    assert mapping["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["eventSourceArn"].endswith(":processing-incoming-0a1b2c3")
    assert mapping["functionName"].endswith(":processing-processor")
    assert 1 <= mapping["batchSize"] <= 10


# -- data ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "spec"),
    [
        ("ChargePointTable", charge_point_table_spec),
        ("TransactionTable", transaction_table_spec),
        ("PendingCallTable", pending_call_table_spec),
    ],
)
def test_tables_have_the_adapters_key_schemas_on_demand(stack: Stack, name: str, spec: Any) -> None:
    table = stack.one("aws:dynamodb/table:Table", name).inputs
    expected = spec(name)
    keys = {k["KeyType"]: k["AttributeName"] for k in expected["KeySchema"]}
    assert table["hashKey"] == keys["HASH"]
    assert table.get("rangeKey") == keys.get("RANGE")
    assert table["billingMode"] == "PAY_PER_REQUEST"
    assert sorted((a["name"], a["type"]) for a in table["attributes"]) == sorted(
        (a["AttributeName"], a["AttributeType"]) for a in expected["AttributeDefinitions"]
    )


def test_charge_point_table_is_keyed_by_charge_point_id_with_recovery(stack: Stack) -> None:
    table = stack.one("aws:dynamodb/table:Table", "ChargePointTable").inputs
    assert table["hashKey"] == "chargePointId"
    assert table["pointInTimeRecovery"] == {"enabled": True}
    history = stack.one("aws:dynamodb/table:Table", "TransactionTable").inputs
    assert history["pointInTimeRecovery"] == {"enabled": True}
    pending = stack.one("aws:dynamodb/table:Table", "PendingCallTable").inputs
    assert pending["ttl"] == {"attributeName": "expiresAt", "enabled": True}


def test_protect_data_guards_the_tables() -> None:
    stack = run_stack({"protectData": "true"})
    for name in ("ChargePointTable", "TransactionTable"):
        assert (
            stack.one("aws:dynamodb/table:Table", name).inputs["deletionProtectionEnabled"] is True
        )


# -- observability -----------------------------------------------------------------------------


def test_log_groups_keep_one_day_by_default_and_as_configured(stack: Stack) -> None:
    groups = stack.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert {g.inputs["name"] for g in groups} == {
        f"/ocpp-gateway/test/{part}"
        for part in ("gateway", "processor", "remote-start", "remote-stop", "iot-rule-errors")
    }
    assert {g.inputs["retentionInDays"] for g in groups} == {1}
    longer = run_stack({"logRetentionDays": "14"}).of_type("aws:cloudwatch/logGroup:LogGroup")
    assert {g.inputs["retentionInDays"] for g in longer} == {14}


def test_dashboard_shows_the_seeds_custom_metrics(stack: Stack) -> None:
    body = stack.one("aws:cloudwatch/dashboard:Dashboard").json("dashboardBody")
    metrics = [m for w in body["widgets"] for m in w["properties"]["metrics"]]
    ours = [m for m in metrics if m[0] == METRICS_NAMESPACE]
    names = {m[1] for m in ours}
    assert {"ActiveConnections", "MessagesIn", "MessagesOut"} <= names
    by_protocol = {m[3] for m in ours if len(m) == 4 and m[2] == "Protocol"}
    assert by_protocol == {"ocpp1.6", "ocpp2.0", "ocpp2.0.1"}
    assert any(m[:2] == ["AWS/ECS", "CPUUtilization"] for m in metrics)


def alarms(stack: Stack) -> dict[str, dict[str, Any]]:
    return {a.name: a.inputs for a in stack.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}


def test_alarms_watch_dead_letters_function_errors_and_gateway_cpu(stack: Stack) -> None:
    found = alarms(stack)
    dlq = found["monitoring-dead-letters"]
    assert dlq["dimensions"] == {"QueueName": "processing-dead-letters-0a1b2c3"}
    assert (dlq["metricName"], dlq["threshold"]) == ("ApproximateNumberOfMessagesVisible", 0)
    for role in ("processor", "remote-start", "remote-stop"):
        errors = found[f"monitoring-{role}-errors"]
        assert errors["metricName"] == "Errors"
        assert errors["dimensions"] == {"FunctionName": f"processing-{role}-0a1b2c3"}
    cpu = found["monitoring-gateway-cpu"]
    assert (cpu["namespace"], cpu["metricName"]) == ("AWS/ECS", "CPUUtilization")
    assert cpu["threshold"] > 60
    topic = stack.outputs["alarmTopicArn"]
    assert all(alarm["alarmActions"] == [topic] for alarm in found.values())


def test_alarm_email_subscribes_to_the_alarm_topic() -> None:
    stack = run_stack({"alarmEmail": "ops@example.com"})
    subscription = stack.one("aws:sns/topicSubscription:TopicSubscription").inputs
    assert (subscription["protocol"], subscription["endpoint"]) == ("email", "ops@example.com")


# -- IAM ----------------------------------------------------------------------------------------


def all_policies(stack: Stack) -> list[Resource]:
    return stack.of_type("aws:iam/rolePolicy:RolePolicy")


@pytest.mark.parametrize("config", [{}, MUTUAL], ids=["plain", "mutual-tls"])
def test_no_policy_grants_wildcard_actions_or_resources_beyond_what_aws_requires(
    config: dict[str, str],
) -> None:
    stack = run_stack(config)
    for policy in all_policies(stack):
        for action, resource in grants(policy.json("policy")):
            assert "*" not in action, (policy.name, action)
            if resource == "*":
                assert action == "ecr:GetAuthorizationToken", (policy.name, action)
    assert not stack.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")


def test_each_role_trusts_only_its_service(stack: Stack) -> None:
    trusted = {
        role.name: role.json("assumeRolePolicy")["Statement"][0]["Principal"]["Service"]
        for role in stack.of_type("aws:iam/role:Role")
    }
    assert trusted == {
        "gateway-execution": "ecs-tasks.amazonaws.com",
        "gateway-task": "ecs-tasks.amazonaws.com",
        "processing-processor": "lambda.amazonaws.com",
        "processing-remote-start": "lambda.amazonaws.com",
        "processing-remote-stop": "lambda.amazonaws.com",
        "processing-iot-rules": "iot.amazonaws.com",
    }


CHARGE_POINTS = "arn:aws:dynamodb:eu-west-1:123456789012:table/ChargePointTable-0a1b2c3"
TRANSACTIONS = "arn:aws:dynamodb:eu-west-1:123456789012:table/TransactionTable-0a1b2c3"
PENDING = "arn:aws:dynamodb:eu-west-1:123456789012:table/PendingCallTable-0a1b2c3"
SHADOWS = "arn:aws:iot:eu-west-1:123456789012:thing/*"
DOWNLINKS = "arn:aws:iot:eu-west-1:123456789012:topic/ocpp/out/*"
BATCH_DOWNLINKS = "arn:aws:iot:eu-west-1:123456789012:topic/ocpp/batch/out/*"


def test_gateway_task_role_reads_the_charge_point_table_only(stack: Stack) -> None:
    assert grants(policy_of(stack, "gateway-task")) == {("dynamodb:GetItem", CHARGE_POINTS)}


def test_gateway_execution_role_reads_exactly_its_four_secrets(stack: Stack) -> None:
    policy = grants(policy_of(stack, "gateway-execution"))
    secrets = {r for a, r in policy if a == "secretsmanager:GetSecretValue"}
    injected = {s["valueFrom"] for s in container(stack)["secrets"]}
    assert secrets == injected and len(secrets) == 4
    images = {r for a, r in policy if a == "ecr:BatchGetImage"}
    assert images == {"arn:aws:ecr:eu-west-1:123456789012:gateway-image"}
    logs = {r for a, r in policy if a == "logs:PutLogEvents"}
    assert logs == {"arn:aws:logs:eu-west-1:123456789012:log-group:/ocpp-gateway/test/gateway:*"}


def test_processor_role_has_what_the_processor_calls_and_no_registry(stack: Stack) -> None:
    policy = grants(policy_of(stack, "processing-processor"))
    assert ("iot:UpdateThingShadow", SHADOWS) in policy
    assert ("iot:GetThingShadow", SHADOWS) in policy
    assert ("iot:Publish", DOWNLINKS) in policy
    assert ("iot:Publish", BATCH_DOWNLINKS) in policy
    assert ("dynamodb:Query", TRANSACTIONS) in policy
    assert ("dynamodb:DeleteItem", PENDING) in policy
    assert ("dynamodb:PutItem", PENDING) not in policy
    assert not any(resource == CHARGE_POINTS for _, resource in policy)
    queue = {a for a, r in policy if r.endswith(":processing-incoming-0a1b2c3")}
    assert queue == {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        # A failed batch item goes back to the queue it came from.
        "sqs:GetQueueUrl",
        "sqs:SendMessage",
    }
    # Its own queue only: not the dead letters.
    assert not any(r.endswith(":processing-dead-letters-0a1b2c3") for _, r in policy)


@pytest.mark.parametrize("role", ["processing-remote-start", "processing-remote-stop"])
def test_remote_command_roles_read_the_registry_and_shadow_and_publish_downlinks(
    stack: Stack, role: str
) -> None:
    policy = grants(policy_of(stack, role))
    assert ("dynamodb:GetItem", CHARGE_POINTS) in policy
    assert ("iot:GetThingShadow", SHADOWS) in policy
    assert ("iot:UpdateThingShadow", SHADOWS) not in policy
    assert ("iot:Publish", DOWNLINKS) in policy
    assert ("iot:Publish", BATCH_DOWNLINKS) not in policy  # a command goes alone
    assert {("dynamodb:PutItem", PENDING), ("dynamodb:DeleteItem", PENDING)} <= policy
    assert not any(resource == TRANSACTIONS for _, resource in policy)


def test_iot_rules_may_only_send_to_the_queue_and_log_errors(stack: Stack) -> None:
    policy = grants(policy_of(stack, "processing-iot-rules"))
    assert {a for a, _ in policy} == {
        "sqs:SendMessage",
        "logs:CreateLogStream",
        "logs:DescribeLogStreams",
        "logs:PutLogEvents",
    }


# -- outputs ---------------------------------------------------------------------------------------


def test_no_secret_reaches_the_stack_outputs(stack: Stack) -> None:
    assert stack.outputs, "the program exported nothing"
    assert stack.secret_outputs == []
    text = json.dumps(stack.outputs)
    for secret in (PRIVATE_KEY, PUBLIC_KEY, CERTIFICATE):
        assert secret.strip() not in text
    assert "PRIVATE KEY" not in text and "BEGIN" not in text
    assert stack.outputs["chargePointUrl"] == (
        "ws://gateway-nlb-0a1b2c3.elb.eu-west-1.amazonaws.com/{chargePointId}"
    )


def test_client_prefix_is_the_gateways_own() -> None:
    assert new_gateway_id().startswith(GATEWAY_CLIENT_PREFIX)
