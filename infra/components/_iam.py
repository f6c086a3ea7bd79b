"""One IAM role for one service principal, with its one inline policy."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from ..policies import Document, assume_role

__all__ = ["service_role"]


def service_role(
    name: str, service: str, policy: pulumi.Input[Document], parent: pulumi.Resource
) -> aws.iam.Role:
    """A role ``service`` (``lambda.amazonaws.com``...) may take, allowed exactly ``policy``.

    Inline rather than managed policies: each document belongs to one role and
    lives and dies with it.
    """
    child = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(name, assume_role_policy=json.dumps(assume_role(service)), opts=child)
    aws.iam.RolePolicy(
        name,
        role=role.id,
        policy=pulumi.Output.from_input(policy).apply(json.dumps),
        opts=child,
    )
    return role
