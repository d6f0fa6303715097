"""The manifest corpus: bad/*.yaml and good/*.yaml, each with its expected verdict in a header.

Header lines (leading comments):

``# expect: RULE FIELD``
    a finding (error) `durabletopic validate` must report; one line each, and no other error;
    ``# expect: valid`` when it reports none; ``# expect: unreadable LINE`` for input it cannot read
``# warn: RULE FIELD``
    a warning it must report (``-`` for no field)
``# stage: STAGE``
    who refuses the object first: ``api-server`` (the CRD's schema and CEL rules: kubectl apply
    fails), ``admission-policy`` (the platform's floors), ``operator`` (admitted, flagged by validate,
    refused at reconcile time), ``kafka`` (admitted and valid offline; Kafka or the live cluster
    refuses it at reconcile time), ``unreadable``, or ``valid``
``# reconcile: Stalled/REASON``
    for an object the API server admits: the condition the operator sets
``# previous: FILE``
    the object as it is before this update (a transition): FILE sits next to it, named ``*.yaml.old``
    so that a directory walk does not pick it up
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).resolve().parent
STAGES = frozenset({"api-server", "admission-policy", "operator", "kafka", "unreadable", "valid"})


@dataclass(frozen=True)
class Entry:
    path: Path
    description: str
    expect: frozenset[tuple[str, str]]
    warn: frozenset[tuple[str, str]]
    stage: str
    reconcile: tuple[str, str] | None
    previous: Path | None
    unreadable_line: int | None

    @property
    def id(self) -> str:
        return f"{self.path.parent.name}/{self.path.stem}"

    @property
    def text(self) -> str:
        return self.path.read_text()


def _pair(value: str) -> tuple[str, str]:
    rule, _, field = value.partition(" ")
    return rule, "" if field.strip() == "-" else field.strip()


def read_entry(path: Path) -> Entry:
    description = ""
    expect: set[tuple[str, str]] = set()
    warn: set[tuple[str, str]] = set()
    stage = reconcile = previous = None
    unreadable_line = None
    with path.open() as stream:
        for line in stream:
            if not line.startswith("#"):
                break
            key, sep, value = line[1:].strip().partition(": ")
            value = value.strip()
            if not sep:
                description = description or line[1:].strip()
            elif key == "expect" and value.startswith("unreadable"):
                unreadable_line = int(value.split()[1])
            elif key == "expect" and value != "valid":
                expect.add(_pair(value))
            elif key == "warn":
                warn.add(_pair(value))
            elif key == "stage":
                stage = value
            elif key == "reconcile":
                reconcile = value
            elif key == "previous":
                previous = value
            elif not description:
                description = line[1:].strip()
    if stage not in STAGES:
        raise ValueError(f"{path}: '# stage:' missing or unknown ({stage!r})")
    condition = tuple(reconcile.split("/", 1)) if reconcile else None
    return Entry(
        path=path,
        description=description,
        expect=frozenset(expect),
        warn=frozenset(warn),
        stage=stage,
        reconcile=condition,  # type: ignore[arg-type]
        previous=path.with_name(previous) if previous else None,
        unreadable_line=unreadable_line,
    )


def entries(kind: str | None = None) -> list[Entry]:
    """Every corpus entry (`kind`: "bad" or "good"), sorted by path."""
    kinds = [kind] if kind else ["bad", "good"]
    return [read_entry(p) for k in kinds for p in sorted((CORPUS / k).glob("*.yaml"))]
