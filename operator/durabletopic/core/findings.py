"""A finding: one broken rule, found by the cluster audit or by the offline manifest checks."""

from __future__ import annotations

from dataclasses import dataclass

from durabletopic.core.reasons import Severity, Stage


@dataclass(frozen=True, slots=True)
class Finding:
    """What was judged, which rule it breaks, how much that matters, and the facts.

    `subject` is a topic (`topic/orders`), a broker default (`broker-default/<key>`) or a
    DurableTopic's `metadata.name`. A manifest's finding also says where it was read (`file`,
    `document`, `line`) and who refuses it (`stage`); a finding of a DurabilityPolicy's rule names the
    policy (`policy`).
    """

    subject: str
    rule: str
    severity: Severity
    message: str = ""
    field: str = ""
    actual: str = ""
    required: str = ""
    stage: Stage | None = None
    file: str = ""
    document: int = 0
    line: int = 0
    policy: str = ""

    @property
    def name(self) -> str:
        return self.subject
