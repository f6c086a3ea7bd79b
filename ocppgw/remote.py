"""The CLI side of remote commands: ask the management API, print the outcome."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from typing import Any

import orjson

__all__ = ["command"]

#: Seconds to wait for the API; it answers within its own call timeout.
HTTP_TIMEOUT = 120.0


def command(base_url: str, path: str, body: dict[str, Any]) -> int:
    """POST a command; print its outcome; 0 only if the charger accepted it."""
    request = urllib.request.Request(
        base_url.rstrip("/") + path,
        data=orjson.dumps(body),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
            status, answer = response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        status, answer = error.code, _json_or_text(error.read())
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        print(
            f"ocppgw: error: no management API at {base_url} ({reason}); is `ocppgw dev` running?",
            file=sys.stderr,
        )
        return 1
    return _report(status, answer)


def _report(status: int, answer: Any) -> int:
    if not isinstance(answer, dict):
        print(f"ocppgw: error: unexpected answer (HTTP {status}): {answer}", file=sys.stderr)
        return 1
    if "outcome" not in answer:
        print(f"ocppgw: error: {answer.get('error', answer)}", file=sys.stderr)
        return 2 if status == 400 else 1
    outcome = answer["outcome"]
    detail = answer.get("response") or answer.get("error")
    if detail is None:
        print(outcome)
    elif isinstance(detail, str):
        print(f"{outcome}: {detail}")
    else:
        print(f"{outcome}: {orjson.dumps(detail).decode()}")
    return 0 if outcome == "Accepted" else 1


def _json_or_text(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode(errors="replace")
