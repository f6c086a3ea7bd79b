"""Where a broker is: one parser of broker URLs for every MQTT client here."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

__all__ = ["BrokerAddress"]

#: Scheme -> (default port, TLS). ``tcp://`` and ``ssl://`` are the spellings
#: paho and Mosquitto's tools accept for the same two transports.
_SCHEMES = {
    "mqtt": (1883, False),
    "tcp": (1883, False),
    "mqtts": (8883, True),
    "ssl": (8883, True),
}


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """``mqtt://[user[:password]@]host[:port]``, or ``mqtts://`` for TLS.

    Credentials may ride in the URL (percent-encoded, as brokers' own tools
    take them); ``str()`` and ``repr()`` never show the password, so an
    address can be logged as it is.
    """

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """Parse a broker URL; ``ValueError`` says what is wrong without echoing a password."""
        if not isinstance(url, str):
            raise ValueError("the broker URL must be text")
        parts = urlsplit(url)
        shown = str(cls._without_credentials(url))
        scheme = parts.scheme.lower()
        if scheme not in _SCHEMES:
            raise ValueError(f"the scheme must be mqtt:// or mqtts://, not {shown!r}")
        default_port, tls = _SCHEMES[scheme]
        if not parts.hostname:
            raise ValueError(f"no host name in {shown!r}")
        try:
            port = parts.port or default_port
        except ValueError:
            raise ValueError(f"the port is not a TCP port number in {shown!r}") from None
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"a broker URL has no path, query or fragment: {shown!r}")
        username = None if parts.username is None else unquote(parts.username)
        password = None if parts.password is None else unquote(parts.password)
        return cls(parts.hostname, port, tls, username, password)

    @staticmethod
    def _without_credentials(url: str) -> str:
        scheme, sep, rest = url.partition("://")
        if not sep:
            return url
        authority, slash, tail = rest.partition("/")
        host = authority.rpartition("@")[2]
        return f"{scheme}{sep}{host}{slash}{tail}"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{self.port}"
