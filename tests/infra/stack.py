"""Run the Pulumi program under Pulumi's mocks and keep what it declared.

No AWS account and no Pulumi CLI: ``pulumi.runtime.set_mocks`` answers every
resource registration and data-source call in process. ``MockAws`` echoes a
resource's inputs back as its state and adds the outputs AWS would compute
(ARNs, names, URLs, generated keys), so the program's ``apply`` chains run
for real and the test sees the final inputs of every resource.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi

from infra.program import build
from infra.settings import PROJECT, StackSettings

REGION = "eu-west-1"
ACCOUNT = "123456789012"
STACK = "test"
#: What the mocked AWS IoT hands out for the generated key pair: no output may contain them.
PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMOCK-PRIVATE-KEY\n-----END RSA PRIVATE KEY-----\n"
PUBLIC_KEY = "-----BEGIN PUBLIC KEY-----\nMOCK-PUBLIC-KEY\n-----END PUBLIC KEY-----\n"
CERTIFICATE = "-----BEGIN CERTIFICATE-----\nMOCK-CERTIFICATE\n-----END CERTIFICATE-----\n"


@dataclass
class Resource:
    type: str
    name: str
    inputs: dict[str, Any]
    parent: str = ""

    def json(self, key: str) -> Any:
        """An input that holds a JSON document (policies, container definitions)."""
        return json.loads(self.inputs[key])


@dataclass
class Stack:
    resources: list[Resource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: list[str] = field(default_factory=list)

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str | None = None) -> Resource:
        found = [r for r in self.of_type(type_) if name is None or r.name == name]
        assert len(found) == 1, f"{len(found)} {type_} named {name}: {[r.name for r in found]}"
        return found[0]

    def named(self, name: str) -> Resource:
        found = [r for r in self.resources if r.name == name]
        assert len(found) == 1, f"{len(found)} resources named {name}"
        return found[0]


class MockAws(pulumi.runtime.Mocks):
    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.stack.resources.append(Resource(args.typ, args.name, dict(args.inputs)))
        state = dict(args.inputs)
        service = args.typ.split(":")[1].split("/")[0]
        generated = f"{args.name}-0a1b2c3"
        state.setdefault("name", generated)
        state.setdefault("arn", f"arn:aws:{service}:{REGION}:{ACCOUNT}:{args.name}")
        extra: Mapping[str, Mapping[str, Any]] = {
            "aws:sqs/queue:Queue": {
                "url": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{generated}",
                "arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{generated}",
            },
            "aws:iot/certificate:Certificate": {
                "certificatePem": CERTIFICATE,
                "publicKey": PUBLIC_KEY,
                "privateKey": PRIVATE_KEY,
            },
            "aws:lb/loadBalancer:LoadBalancer": {
                "dnsName": f"{generated}.elb.{REGION}.amazonaws.com",
                "arnSuffix": f"net/{generated}/50dc6c495c0c9188",
            },
            "aws:lb/targetGroup:TargetGroup": {
                "arnSuffix": f"targetgroup/{generated}/73e2d6bc24d8a067"
            },
            "aws:ecr/repository:Repository": {
                "repositoryUrl": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{generated}"
            },
            "aws:dynamodb/table:Table": {
                "arn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{generated}"
            },
            "aws:cloudwatch/logGroup:LogGroup": {
                "arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{state['name']}"
            },
            "aws:secretsmanager/secret:Secret": {
                "arn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{generated}"
            },
        }
        state.update(extra.get(args.typ, {}))
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        answers: dict[str, dict[str, Any]] = {
            "aws:index/getAvailabilityZones:getAvailabilityZones": {
                "names": [f"{REGION}a", f"{REGION}b", f"{REGION}c"]
            },
            "aws:index/getRegion:getRegion": {"region": REGION, "name": REGION},
            "aws:index/getPartition:getPartition": {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
            },
            "aws:index/getCallerIdentity:getCallerIdentity": {
                "accountId": ACCOUNT,
                "arn": f"arn:aws:iam::{ACCOUNT}:user/test",
                "userId": "AIDATEST",
            },
            "aws:iot/getEndpoint:getEndpoint": {
                "endpointAddress": f"a1b2c3d4e5f6g7-ats.iot.{REGION}.amazonaws.com"
            },
        }
        if args.token not in answers:
            raise AssertionError(f"the program called an unmocked data source: {args.token}")
        return answers[args.token]


# Pulumi's runtime takes the thread's current event loop (and its mock
# monitor makes one per executor thread, never closed). The async tests
# before these leave the main thread without one, so the package keeps one
# loop of its own, alive for the whole session: closing it would let those
# helper loops be collected mid-run, as unclosed-loop warnings.
_loop: asyncio.AbstractEventLoop | None = None


def mock_pulumi(stack: Stack, project: str = PROJECT, name: str = STACK) -> None:
    """Point Pulumi's runtime at ``MockAws`` for one program run."""
    global _loop  # noqa: PLW0603 - one loop for the package, see above
    if _loop is None:
        _loop = asyncio.new_event_loop()
    asyncio.set_event_loop(_loop)
    pulumi.runtime.set_mocks(MockAws(stack), project=project, stack=name, preview=False)


def release_event_loop() -> None:
    """Leave the main thread without a current loop, as the async tests expect."""
    asyncio.set_event_loop(None)


def run_stack(config: Mapping[str, str] | None = None) -> Stack:
    """Declare the whole stack with ``config`` (the project's keys) under mocks."""
    settings = StackSettings.from_values(dict(config or {}))
    stack = Stack()
    mock_pulumi(stack)

    @pulumi.runtime.test  # type: ignore[misc,untyped-decorator,unused-ignore]
    def declare() -> pulumi.Output[Any]:
        outputs = build(settings, pulumi.AssetArchive({}))

        def keep(name: str, output: pulumi.Output[Any]) -> pulumi.Output[None]:
            async def secret() -> None:
                if await output.is_secret():
                    stack.secret_outputs.append(name)

            def record(value: Any) -> None:
                stack.outputs[name] = value

            return pulumi.Output.all(output, pulumi.Output.from_input(secret())).apply(
                lambda v: record(v[0])
            )

        return pulumi.Output.all(*(keep(name, output) for name, output in outputs.items()))

    declare()
    return stack
