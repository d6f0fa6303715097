"""Statistics of the measured samples."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def stats(values: Sequence[float]) -> dict[str, float | int | None]:
    """count, min, p50, p99, max and mean, in the unit of the values; None where there are none."""
    if not values:
        return {"count": 0, "min": None, "p50": None, "p99": None, "max": None, "mean": None}
    return {
        "count": len(values),
        "min": round(min(values), 4),
        "p50": round(percentile(values, 50), 4),
        "p99": round(percentile(values, 99), 4),
        "max": round(max(values), 4),
        "mean": round(sum(values) / len(values), 4),
    }


def fmt_stats(s: Mapping[str, Any], unit: str = "s") -> str:
    if not s.get("count"):
        return "none"
    return f"p50 {s['p50']:.3f} {unit}, p99 {s['p99']:.3f} {unit}, max {s['max']:.3f} {unit} (n={s['count']})"
