"""The Lambda footprint tool, small: it builds and runs the real package against moto.

It measures the deployable arm64 package too, whose wheels only the package
index has: marked ``network`` (``--run-network``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.lambda_footprint import LIMIT_MB, measure


@pytest.mark.network
def test_a_few_sessions_fit_the_functions_memory(tmp_path: Path) -> None:
    summary = measure(tmp_path / "scratch", chargers=3, cache=tmp_path / "cache")
    # Presence, boot, two statuses, a session start and three readings each.
    assert summary["records"] == 3 * 8
    assert summary["failed_records"] == 0
    assert summary["batches"] == 3
    assert 0 < summary["rss_after_first_batch_mib"] <= summary["peak_rss_mib"] < LIMIT_MB
    assert 0 < summary["package_zipped_mib"] < summary["package_unzipped_mib"] < 250
