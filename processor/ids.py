"""Fresh identifiers for what the backend sends."""

from __future__ import annotations

import secrets
import uuid

__all__ = ["RandomIds"]


class RandomIds:
    """UUID4 message ids (36 characters, the OCPP-J maximum) and random remoteStartIds."""

    def message_id(self) -> str:
        return str(uuid.uuid4())

    def remote_start_id(self) -> int:
        # 2.0.1 remoteStartId is an integer; stay positive and within int32.
        return secrets.randbelow(2**31 - 1) + 1
