"""The lab's results: the table in docs/durability.md and the chart docs/durability-lab.svg."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from bench.durability.cases import CASES, Case, Run

BEGIN: Final = "<!-- durability-lab:begin (written by make durability-lab) -->"
END: Final = "<!-- durability-lab:end -->"
CHART: Final = "durability-lab.svg"


@dataclass(frozen=True)
class RunResult:
    case: int
    setting: str
    what: str
    topic: str
    loss_field: str
    exit_code: int
    sent: int
    believed_sent: int
    acknowledged: int
    producer_errors: int
    producer_checks: bool
    lost: int
    never_arrived: int
    duplicated: int
    absorbed: int
    not_processed: int
    seconds: float

    @classmethod
    def of(
        cls, run: Run, case: Case, topic: str, exit_code: int, report: Mapping[str, Any], seconds: float
    ) -> RunResult:
        return cls(
            case=run.case,
            setting=run.setting,
            what=run.what,
            topic=topic,
            loss_field=case.loss,
            exit_code=exit_code,
            sent=report["sent"],
            believed_sent=report["believed_sent"],
            acknowledged=report["acknowledged"],
            producer_errors=sum(report["delivery_errors"].values()),
            producer_checks=report["producer"] == "checked",
            lost=report["missing"],
            never_arrived=report["never_arrived"],
            duplicated=report["duplicates_delivered"],
            absorbed=report["absorbed"],
            not_processed=report["not_processed"],
            seconds=round(seconds, 1),
        )

    @property
    def loss(self) -> int:
        """The count that shows this case's loss."""
        return int(getattr(self, self.loss_field))

    @property
    def lost_anything(self) -> bool:
        return bool(self.lost or self.never_arrived or self.not_processed or self.duplicated)

    def summary(self) -> str:
        return (
            f"sent {self.sent}, believed sent {self.believed_sent}, acknowledged {self.acknowledged}, "
            f"producer errors {self.producer_errors}, lost {self.lost}, never arrived {self.never_arrived}, "
            f"duplicated {self.duplicated} (absorbed {self.absorbed}), not processed {self.not_processed}, "
            f"probe exit {self.exit_code}, {self.seconds:.0f} s"
        )


@dataclass(frozen=True)
class LabResult:
    date: str
    machine: Mapping[str, Any]
    runs: Sequence[RunResult]
    minutes: float

    def failures(self) -> list[str]:
        """What the lab set out to show and did not."""
        found = []
        for run in self.runs:
            if run.setting == "weak" and run.loss == 0:
                found.append(f"case {run.case} weak: no {run.loss_field.replace('_', ' ')} (expected a loss)")
            if run.setting == "weak" and run.exit_code != 1:
                found.append(f"case {run.case} weak: the probe exited {run.exit_code}, not 1")
            if run.setting == "safe" and (run.lost_anything or run.exit_code != 0):
                found.append(f"case {run.case} safe: {run.summary()}")
        return found

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabResult:
        return cls(
            date=data["date"],
            machine=data["machine"],
            runs=[RunResult(**run) for run in data["runs"]],
            minutes=data["minutes"],
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "date": self.date,
            "machine": dict(self.machine),
            "minutes": self.minutes,
            "runs": [asdict(r) for r in self.runs],
        }


def _errors(run: RunResult) -> str:
    if run.producer_checks:
        return f"{run.producer_errors:,}"
    return f"{run.producer_errors:,} (ignored)"


def table(lab: LabResult) -> str:
    machine = lab.machine
    lines = [
        f"Run on {lab.date[:10]} with Kafka {machine.get('kafka', '?')} (three brokers, KRaft) on "
        f"{machine.get('nproc', '?')} cores, load average {_load(machine)} at the end; {lab.minutes:g} "
        "minutes. Counts are messages.",
        "",
        "| case | setting | sent | believed sent | acknowledged | errors the producer got | lost "
        "(acknowledged, never read) | never arrived (believed sent, never read) | duplicated to the "
        "application | not processed | probe exit |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in lab.runs:
        duplicated = f"{run.duplicated:,}" + (f" ({run.absorbed:,} absorbed)" if run.absorbed else "")
        lines.append(
            f"| {run.case}. {CASES[run.case].title} | **{run.setting}**: {run.what} | {run.sent:,} | "
            f"{run.believed_sent:,} | {run.acknowledged:,} | {_errors(run)} | {run.lost:,} | "
            f"{run.never_arrived:,} | {duplicated} | {run.not_processed:,} | {run.exit_code} |"
        )
    lines += ["", f"![The lab's counts, weak beside safe]({CHART})"]
    return "\n".join(lines)


def _load(machine: Mapping[str, Any]) -> str:
    load = machine.get("loadavg") or []
    return f"{load[0]:.2f}" if load else "?"


# ----------------------------------------------------------------------------- the chart

_WIDTH: Final = 860
_LABEL_W: Final = 300
_BAR_H: Final = 22
_GAP: Final = 6
_CASE_GAP: Final = 26
_TOP: Final = 70
_COLOURS: Final = {"weak": "#c0392b", "safe": "#1e8449"}


def chart(lab: LabResult) -> str:
    """A bar per run: the count that shows the case's loss, weak beside safe, each case on its own scale
    (the counts are written beside the bars)."""
    by_case: dict[int, list[RunResult]] = {}
    for run in lab.runs:
        by_case.setdefault(run.case, []).append(run)
    bar_space = _WIDTH - _LABEL_W - 170
    height = _TOP + sum(len(v) * (_BAR_H + _GAP) + _CASE_GAP + 18 for v in by_case.values()) + 30
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" font-family="sans-serif" font-size="13">',
        f'<rect width="{_WIDTH}" height="{height}" fill="white"/>',
        '<text x="16" y="28" font-size="17" font-weight="bold">What each setting prevents: messages lost, '
        "weak setting beside safe</text>",
        f'<text x="16" y="50" fill="#555">Kafka {html.escape(str(lab.machine.get("kafka", "?")))}, '
        f"{html.escape(lab.date[:10])}, make durability-lab; each bar counts the case's loss "
        "(scaled per case)</text>",
    ]
    y = _TOP
    for number, runs in sorted(by_case.items()):
        case = CASES[number]
        what = case.loss.replace("_", " ")
        out.append(
            f'<text x="16" y="{y + 12}" font-weight="bold">{number}. {html.escape(case.title)} ({what})</text>'
        )
        y += 18
        biggest = max(run.loss for run in runs) or 1
        for run in runs:
            width = round(bar_space * run.loss / biggest)
            colour = _COLOURS.get(run.setting, "#555")
            out.append(f'<text x="32" y="{y + 15}">{run.setting}</text>')
            if width:
                out.append(
                    f'<rect x="{_LABEL_W}" y="{y}" width="{width}" height="{_BAR_H}" fill="{colour}"/>'
                )
            note = f"{run.loss:,}"
            if run.setting == "safe" and run.producer_errors:
                note += f"  ({run.producer_errors:,} errors reported to the producer)"
            if run.absorbed:
                note += f"  ({run.absorbed:,} redelivered, absorbed)"
            out.append(
                f'<text x="{_LABEL_W + width + 8}" y="{y + 15}" fill="{colour}">{html.escape(note)}</text>'
            )
            out.append(
                f'<text x="90" y="{y + 15}" fill="#555" font-size="11">{html.escape(_short(run.what))}</text>'
            )
            y += _BAR_H + _GAP
        y += _CASE_GAP
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _short(text: str, limit: int = 34) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ----------------------------------------------------------------------------- writing


def replace_block(document: str, block: str) -> str:
    """``document`` with the text between the lab's markers replaced (markers appended when absent)."""
    if BEGIN in document and END in document:
        head, rest = document.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        return f"{head}{BEGIN}\n{block}\n{END}{tail}"
    return f"{document.rstrip()}\n\n{BEGIN}\n{block}\n{END}\n"


def update_docs(lab: LabResult, docs: Path) -> list[Path]:
    page = docs / "durability.md"
    page.write_text(replace_block(page.read_text(), table(lab)))
    svg = docs / CHART
    svg.write_text(chart(lab))
    return [page, svg]
