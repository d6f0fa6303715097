"""The operator's metrics, scraped and compared."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families


@dataclass
class MetricsSnapshot:
    """Samples of a Prometheus text exposition, by (sample name, sorted labels)."""

    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> MetricsSnapshot:
        samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
        return cls(samples)

    def total(self, sample: str, /, **labels: str) -> float:
        """Sum of the samples named `sample` that carry all of `labels`."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == sample and wanted.issubset(ls))

    def by(self, sample: str, label: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for (n, labels), value in self.samples.items():
            if n == sample:
                key = dict(labels).get(label, "")
                out[key] = out.get(key, 0.0) + value
        return out

    def minus(self, earlier: MetricsSnapshot) -> MetricsSnapshot:
        """Counter deltas (for counters and histogram _count/_sum)."""
        keys = set(self.samples) | set(earlier.samples)
        return MetricsSnapshot({k: self.samples.get(k, 0.0) - earlier.samples.get(k, 0.0) for k in keys})


ADMIN = "durabletopic_admin_requests_total"


API = "durabletopic_api_requests_total"


SWEEP_COUNT = "durabletopic_sweep_duration_seconds_count"


SWEEP_SUM = "durabletopic_sweep_duration_seconds_sum"


DRIFT_DETECTED = "durabletopic_drift_detected_total"


RECONCILE_COUNT = "durabletopic_reconcile_duration_seconds_count"


RECONCILE_SUM = "durabletopic_reconcile_duration_seconds_sum"


ADMIN_SECONDS = "durabletopic_admin_request_duration_seconds_sum"


COUNTERS = (ADMIN, API, SWEEP_COUNT, SWEEP_SUM, RECONCILE_COUNT, RECONCILE_SUM, ADMIN_SECONDS)


def request_counts(delta: MetricsSnapshot) -> dict[str, Any]:
    """Admin and API server request counts of a window, totals and breakdowns."""
    admin_by_op = {k: int(v) for k, v in sorted(delta.by(ADMIN, "op").items()) if v}
    api_by_method = {k: int(v) for k, v in sorted(delta.by(API, "method").items()) if v}
    return {
        "admin_requests": {
            "total": int(delta.total(ADMIN)),
            "errors": int(delta.total(ADMIN, result="error")),
            "by_op": admin_by_op,
        },
        "api_requests": {
            "total": int(delta.total(API)),
            "errors": int(delta.total(API, result="error")),
            "by_method": api_by_method,
            # the Lease is read (GET) and renewed (PUT) every 2 s; everything else is a write for objects
            "writes": int(sum(v for m, v in api_by_method.items() if m in ("PATCH", "POST", "DELETE"))),
        },
        "admin_request_seconds_by_op": {
            k: round(v, 3) for k, v in sorted(delta.by(ADMIN_SECONDS, "op").items()) if v
        },
        "reconcile_passes": int(delta.total(RECONCILE_COUNT)),
        "reconcile_pass_seconds": round(delta.total(RECONCILE_SUM), 3),
        "sweeps": int(delta.total(SWEEP_COUNT)),
    }
