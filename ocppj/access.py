"""What the gateway needs to know to let a charge point in.

A pure value shared by the processor's registries (which produce it) and the
gateway (which consumes it through ``gateway.directory.Directory``); it lives
in ``ocppj`` because neither side may import the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ChargePointAccess"]


@dataclass(frozen=True, slots=True)
class ChargePointAccess:
    """A registered charge point and, for security profiles 1 and 2, its password hash.

    ``password_hash`` is None when no password is set. It is left out of the
    repr, so logging this object never writes the hash.
    """

    charge_point_id: str
    password_hash: str | None = field(default=None, repr=False)
