"""Latency histograms that several load-generator processes can merge.

A run of tens of thousands of chargers answers millions of CALLs; keeping
every latency would cost the load generator memory and make merging the
processes' figures a large transfer. Instead each latency lands in one of a
set of log-spaced buckets (each 2 % wider than the last), so a histogram is a
small ``{bucket: count}`` map whatever the run's length, two histograms merge
by adding counts, and a percentile read from the buckets is within 2 % of
the exact value. The maximum is kept exactly.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BUCKET_GROWTH", "LatencyHistogram"]

#: Each bucket's upper bound is this factor times the previous one's.
BUCKET_GROWTH = 1.02
_INVERSE_LOG_GROWTH = 1.0 / math.log(BUCKET_GROWTH)


@dataclass(slots=True)
class LatencyHistogram:
    """Counts of latencies (nanoseconds) in log-spaced buckets."""

    counts: Counter[int] = field(default_factory=Counter)
    max_ns: int = 0

    def record(self, latency_ns: int) -> None:
        # Bucket b holds latencies in (GROWTH**(b-1), GROWTH**b] nanoseconds.
        self.counts[math.ceil(math.log(max(latency_ns, 1)) * _INVERSE_LOG_GROWTH)] += 1
        self.max_ns = max(self.max_ns, latency_ns)

    @property
    def count(self) -> int:
        return sum(self.counts.values())

    def merge(self, other: LatencyHistogram) -> None:
        self.counts.update(other.counts)
        self.max_ns = max(self.max_ns, other.max_ns)

    def percentile_ms(self, q: float) -> float | None:
        """The upper bound of the bucket holding the nearest-rank ``q`` quantile,
        in milliseconds (never above the exact maximum); None when empty."""
        total = self.count
        if not total:
            return None
        rank = max(1, math.ceil(q * total))
        seen = 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen >= rank:
                return round(min(_upper_ns(bucket), self.max_ns) / 1e6, 3)
        return round(self.max_ns / 1e6, 3)  # pragma: no cover - rank <= total

    def summary(self) -> dict[str, Any]:
        """Count, p50/p90/p99, max and the buckets (upper bound in ms, count)."""
        return {
            "count": self.count,
            "p50": self.percentile_ms(0.50),
            "p90": self.percentile_ms(0.90),
            "p99": self.percentile_ms(0.99),
            "max": round(self.max_ns / 1e6, 3) if self.counts else None,
            "buckets": [
                [round(_upper_ns(bucket) / 1e6, 6), self.counts[bucket]]
                for bucket in sorted(self.counts)
            ],
        }

    def to_json(self) -> dict[str, Any]:
        """A form that crosses a process boundary (JSON keys are strings)."""
        return {"counts": {str(b): n for b, n in self.counts.items()}, "max_ns": self.max_ns}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LatencyHistogram:
        counts = Counter({int(b): int(n) for b, n in data["counts"].items()})
        return cls(counts, int(data["max_ns"]))


def _upper_ns(bucket: int) -> float:
    return float(BUCKET_GROWTH**bucket)
