"""AWS IoT Core for the gateway: its certificate, its policy and its four secrets."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ..policies import Account, iot_gateway_policy

__all__ = ["GATEWAY_SECRETS", "Iot", "IotArgs"]

#: The seed's secret names, which are also the gateway's environment variables.
GATEWAY_SECRETS = (
    "IOT_AMAZON_ROOT_CA",
    "IOT_GATEWAY_CERTIFICATE",
    "IOT_GATEWAY_PUBLIC_KEY",
    "IOT_GATEWAY_PRIVATE_KEY",
)


@dataclass(frozen=True, slots=True)
class IotArgs:
    account: pulumi.Input[Account]
    topic_prefix: str
    #: PEM of the CA that signs IoT Core's server certificate (Amazon Root CA 1).
    root_ca: str


class Iot(pulumi.ComponentResource):
    """One certificate for every gateway task; its keys live only in Secrets Manager.

    AWS IoT generates the key pair (``aws.iot.Certificate`` without a CSR), so
    the private key exists in the provider's response, Pulumi's encrypted
    state and the secret, and nowhere else: no stack output carries it.
    """

    #: Secret name (``IOT_...``) -> the Secrets Manager secret's ARN.
    secret_arns: dict[str, pulumi.Output[str]]
    endpoint: pulumi.Output[str]
    certificate_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: IotArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ocpp:infra:Iot", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        policy = aws.iot.Policy(
            f"{name}-gateway",
            policy=pulumi.Output.from_input(args.account).apply(
                lambda account: json.dumps(iot_gateway_policy(account, args.topic_prefix))
            ),
            opts=child,
        )
        certificate = aws.iot.Certificate(f"{name}-gateway", active=True, opts=child)
        aws.iot.PolicyAttachment(
            f"{name}-gateway", policy=policy.name, target=certificate.arn, opts=child
        )
        values: dict[str, pulumi.Input[str]] = {
            "IOT_AMAZON_ROOT_CA": args.root_ca,
            "IOT_GATEWAY_CERTIFICATE": certificate.certificate_pem,
            "IOT_GATEWAY_PUBLIC_KEY": certificate.public_key,
            "IOT_GATEWAY_PRIVATE_KEY": certificate.private_key,
        }
        self.secret_arns = {}
        for secret_name in GATEWAY_SECRETS:
            slug = secret_name.lower().replace("_", "-")
            secret = aws.secretsmanager.Secret(
                slug, description=f"{secret_name} for the OCPP gateway (PEM)", opts=child
            )
            aws.secretsmanager.SecretVersion(
                slug,
                secret_id=secret.id,
                secret_string=pulumi.Output.secret(values[secret_name]),
                opts=child,
            )
            self.secret_arns[secret_name] = secret.arn
        self.endpoint = aws.iot.get_endpoint_output(
            endpoint_type="iot:Data-ATS", opts=pulumi.InvokeOptions(parent=self)
        ).endpoint_address
        self.certificate_arn = certificate.arn
        self.register_outputs(
            {
                "endpoint": self.endpoint,
                "certificateArn": self.certificate_arn,
                "policyName": policy.name,
            }
        )
