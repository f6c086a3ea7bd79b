"""The IoT Device Shadow update rules that the SQLite store applies."""

from __future__ import annotations

import pytest

from processor.shadow import apply_update, merge


def test_merge_is_deep_and_leaves_its_arguments_alone() -> None:
    current = {"a": {"b": 1, "c": {"d": 2}}, "keep": True}
    patch = {"a": {"c": {"e": 3}}}
    assert merge(current, patch) == {"a": {"b": 1, "c": {"d": 2, "e": 3}}, "keep": True}
    assert current == {"a": {"b": 1, "c": {"d": 2}}, "keep": True}
    assert patch == {"a": {"c": {"e": 3}}}


def test_null_deletes_a_key_at_any_depth() -> None:
    assert merge({"a": 1, "b": 2}, {"a": None}) == {"b": 2}
    assert merge({"a": {"b": 1, "c": 2}}, {"a": {"b": None}}) == {"a": {"c": 2}}
    assert merge({"a": 1}, {"missing": None}) == {"a": 1}


def test_nulls_inside_a_new_object_are_dropped() -> None:
    assert merge({}, {"a": {"b": None, "c": 1}}) == {"a": {"c": 1}}


def test_arrays_and_scalars_are_replaced_whole() -> None:
    assert merge({"a": [1, 2, 3]}, {"a": [4]}) == {"a": [4]}
    assert merge({"a": {"b": 1}}, {"a": 5}) == {"a": 5}
    assert merge({"a": 5}, {"a": {"b": 1}}) == {"a": {"b": 1}}


def test_version_starts_at_one_and_counts_updates() -> None:
    first = apply_update(None, {"reported": {"x": 1}}, timestamp=100)
    assert first == {"state": {"reported": {"x": 1}}, "version": 1, "timestamp": 100}
    second = apply_update(first, {"reported": {"y": 2}}, timestamp=101)
    assert second["version"] == 2
    assert second["state"]["reported"] == {"x": 1, "y": 2}
    assert second["timestamp"] == 101
    # An update that changes nothing still counts, as IoT Core counts it.
    third = apply_update(second, {"reported": {"y": 2}}, timestamp=102)
    assert third["version"] == 3


def test_a_null_section_is_deleted_and_sections_are_independent() -> None:
    document = apply_update(None, {"reported": {"x": 1}, "desired": {"x": 2}}, timestamp=1)
    assert document["state"] == {"reported": {"x": 1}, "desired": {"x": 2}}
    document = apply_update(document, {"desired": None}, timestamp=2)
    assert document["state"] == {"reported": {"x": 1}}


@pytest.mark.parametrize("state", [{"delta": {}}, {"reported": 3}, {"reported": []}])
def test_malformed_updates_are_refused(state: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="shadow"):
        apply_update(None, state, timestamp=1)
