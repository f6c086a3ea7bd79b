"""AWS IoT Device Shadow update rules, for stores that are not IoT Core.

An update ``{"state": {"reported": {...}, "desired": {...}}}``:

* merges objects key by key, to any depth;
* replaces every other value, arrays included, as a whole;
* deletes a key whose new value is ``null`` (and a whole section given as ``null``);
* adds one to ``version`` and sets ``timestamp`` (epoch seconds).

The SQLite shadow store applies these rules so that what holds for it holds
for IoT Core too.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SECTIONS", "apply_update", "merge", "replacement"]

SECTIONS = ("reported", "desired")


def merge(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Return ``current`` with ``patch`` merged in; neither argument is changed."""
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        elif isinstance(value, dict):
            merged[key] = merge({}, value)  # drops nulls nested in a new object
        else:
            merged[key] = value
    return merged


def apply_update(
    document: dict[str, Any] | None, state: dict[str, Any], timestamp: int
) -> dict[str, Any]:
    """The shadow document after applying the update's ``state`` to ``document``."""
    unknown = set(state) - set(SECTIONS)
    if unknown:
        raise ValueError(f"shadow state has unknown sections: {', '.join(sorted(unknown))}")
    current = document or {"state": {}, "version": 0}
    sections = dict(current["state"])
    for section, patch in state.items():
        if patch is None:
            sections.pop(section, None)
        elif isinstance(patch, dict):
            sections[section] = merge(sections.get(section, {}), patch)
        else:
            raise ValueError(f"shadow section {section!r} must be an object or null")
    return {"state": sections, "version": current["version"] + 1, "timestamp": timestamp}


def replacement(current: Any, new: dict[str, Any]) -> dict[str, Any]:
    """The patch that, merged into ``current``, leaves exactly ``new``.

    Merging only adds and overwrites; an object that must be replaced whole
    (an answer's payload, say) needs its vanished keys written as null.
    """
    patch = dict(new)
    if isinstance(current, dict):
        for key, value in current.items():
            if key not in new:
                patch[key] = None
            elif isinstance(value, dict) and isinstance(new[key], dict):
                patch[key] = replacement(value, new[key])
    return patch
