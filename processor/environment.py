"""Typed reads of a deployable's environment, whose every error names the variable.

Shared by every deployable's settings (``ocppgw``'s and the Lambda's, which
ships only ``processor`` and ``ocppj``). Nothing here reads ``os.environ``: a
deployable hands its environment to ``Environment``.

A component config validates itself and says ``field: problem``; the user
set a variable, not a field. ``Environment.build`` therefore takes each
field as a ``Read`` of the variable that feeds it, so the field-to-variable
table that translates the config's error is the very call that reads the
variables, and cannot drift from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

__all__ = [
    "LOG_LEVELS",
    "Environment",
    "Read",
    "SettingsError",
    "certificates",
    "checked",
    "flag",
    "given",
    "integer",
    "log_level",
    "number",
    "optional_path",
    "optional_text",
    "port",
    "positive_seconds",
    "required",
    "text",
    "url",
    "words",
]

T = TypeVar("T")

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class SettingsError(ValueError):
    """A setting has a value that cannot work; the message starts with the variable."""


@dataclass(frozen=True, slots=True)
class Read(Generic[T]):
    """How one variable's (stripped) text becomes a value.

    ``parse`` raises ValueError with the problem alone; ``Environment`` puts
    the variable's name in front.
    """

    variable: str
    parse: Callable[[str], T]


class Environment:
    """A deployable's environment, with the defaults of its variables table."""

    def __init__(self, environ: Mapping[str, str], defaults: Mapping[str, str]) -> None:
        self._environ = environ
        self._defaults = defaults

    def text(self, name: str) -> str:
        """The variable's text, stripped; its default if it is unset."""
        return self._environ.get(name, self._defaults.get(name, "")).strip()

    def read(self, read: Read[T]) -> T:
        try:
            return read.parse(self.text(read.variable))
        except SettingsError:
            raise
        except ValueError as exc:
            raise SettingsError(f"{read.variable}: {exc}") from None

    def build(self, config_type: Callable[..., T], /, **fields: Read[Any] | Any) -> T:
        """``config_type(**fields)``, each ``Read`` field read from its variable.

        A ``field: problem`` ValueError of ``config_type`` becomes a
        ``SettingsError`` naming the variable that feeds ``field``. A field
        given as a plain value has no variable (a fixed or derived setting).
        """
        variables = {name: f.variable for name, f in fields.items() if isinstance(f, Read)}
        values = {name: self.read(f) if isinstance(f, Read) else f for name, f in fields.items()}
        try:
            return config_type(**values)
        except ValueError as exc:
            field, _, problem = str(exc).partition(": ")
            if field not in variables:
                raise
            raise SettingsError(f"{variables[field]}: {problem}") from None


# -- reads -----------------------------------------------------------------------


def _whole_number(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a whole number") from None


def _number(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number") from None


def _port(value: str) -> int:
    number = _whole_number(value)
    if not 0 <= number <= 65535:
        raise ValueError(f"{number} is not a TCP port number")
    return number


def _positive_seconds(value: str) -> float:
    seconds = _number(value)
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"must be a positive number of seconds, not {value!r}")
    return seconds


def _log_level(value: str) -> str:
    level = value.upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"{level!r} is not one of {', '.join(LOG_LEVELS)}")
    return level


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _flag(value: str) -> bool:
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"{value!r} is not one of {', '.join(_TRUE + _FALSE)}")


def _required(value: str) -> str:
    if not value:
        raise ValueError("must be set")
    return value


def _url(value: str) -> str | None:
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    return value


def _certificates(value: str) -> tuple[tuple[Path, Path], ...]:
    pairs = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        certificate, colon, key = item.partition(":")
        if not colon or not certificate or not key:
            raise ValueError(f"{item!r} is not CERTIFICATE:PRIVATE_KEY")
        pairs.append((Path(certificate), Path(key)))
    return tuple(pairs)


def text(name: str) -> Read[str]:
    return Read(name, str)


def optional_text(name: str) -> Read[str | None]:
    """The text, or None if it is empty."""
    return Read(name, lambda value: value or None)


def required(name: str) -> Read[str]:
    """Text that must not be empty."""
    return Read(name, _required)


def words(name: str) -> Read[tuple[str, ...]]:
    """A comma-separated list; blanks around and between items are dropped."""
    return Read(name, lambda value: tuple(w.strip() for w in value.split(",") if w.strip()))


def integer(name: str) -> Read[int]:
    return Read(name, _whole_number)


def flag(name: str) -> Read[bool]:
    """On or off: ``true``/``false`` (or ``1``/``0``, ``yes``/``no``, ``on``/``off``)."""
    return Read(name, _flag)


def number(name: str) -> Read[float]:
    return Read(name, _number)


def positive_seconds(name: str) -> Read[float]:
    return Read(name, _positive_seconds)


def port(name: str) -> Read[int]:
    return Read(name, _port)


def optional_path(name: str) -> Read[Path | None]:
    return Read(name, lambda value: Path(value) if value else None)


def certificates(name: str) -> Read[tuple[tuple[Path, Path], ...]]:
    """``cert.pem:key.pem[,cert2.pem:key2.pem]``: an RSA and an ECDSA pair, say."""
    return Read(name, _certificates)


def log_level(name: str = "OCPP_LOG_LEVEL") -> Read[str]:
    return Read(name, _log_level)


def url(name: str) -> Read[str | None]:
    """An http(s) endpoint URL, or None if it is empty."""
    return Read(name, _url)


def checked(name: str, check: Callable[[str], object]) -> Read[str]:
    """The text, after ``check`` (which raises ValueError) accepts it."""

    def parse(value: str) -> str:
        check(value)
        return value

    return Read(name, parse)


def given(name: str, value: T) -> Read[T]:
    """A value worked out from ``name`` (and perhaps others) by the caller: a
    config's complaint about it still names ``name``."""
    return Read(name, lambda _text: value)
