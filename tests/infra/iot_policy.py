"""Just enough of AWS IoT's policy evaluation to ask what a client may do.

IoT policy resources match with ``*`` (any characters, ``/`` included) and
``?`` (one character) after policy variables are substituted; an action is
allowed when an Allow statement lists it with a matching resource (these
documents have no Deny).
"""

from __future__ import annotations

import re
from typing import Any

ARN = "arn:aws:iot:eu-west-1:123456789012:"


def _pattern(resource: str, client_id: str) -> re.Pattern[str]:
    resource = resource.replace("${iot:ClientId}", client_id)
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in resource)
    return re.compile("".join(parts))


def allows(policy: dict[str, Any], client_id: str, action: str, resource: str) -> bool:
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        if action not in statement["Action"]:
            continue
        if any(_pattern(r, client_id).fullmatch(ARN + resource) for r in statement["Resource"]):
            return True
    return False
