"""The durability lab's bookkeeping: its cases' choreographies, its verdict, its table and chart (no servers)."""

from __future__ import annotations

import xml.dom.minidom

from bench.durability.cases import CASES, Placement, runs
from bench.durability.report import BEGIN, END, LabResult, RunResult, chart, replace_block, table

P = Placement(leader=1, followers=(2, 3))


def result(case: int, setting: str, **counts: int) -> RunResult:
    base = {
        "sent": 100,
        "believed_sent": 100,
        "acknowledged": 100,
        "producer_errors": 0,
        "lost": 0,
        "never_arrived": 0,
        "duplicated": 0,
        "absorbed": 0,
        "not_processed": 0,
        "exit_code": 0,
    }
    base.update(counts)
    return RunResult(
        case=case,
        setting=setting,
        what=f"{setting} setting",
        topic=f"t-{case}-{setting}",
        loss_field=CASES[case].loss,
        producer_checks=True,
        seconds=1.0,
        **base,
    )


def lab(*results: RunResult) -> LabResult:
    return LabResult(
        "2026-11-28T00:00:00Z", {"kafka": "4.3.1", "nproc": 2, "loadavg": [0.5]}, list(results), 4.0
    )


def test_every_case_runs_weak_then_safe_and_counts_a_field_the_results_have() -> None:
    assert [(r.case, r.setting) for r in runs()] == [(c, s) for c in (1, 2, 3, 4) for s in ("weak", "safe")]
    fields = set(RunResult.__dataclass_fields__)
    assert all(case.loss in fields for case in CASES.values())


def test_the_unclean_election_waits_for_the_stale_follower_before_the_old_leader_returns() -> None:
    weak = next(r for r in runs() if (r.case, r.setting) == (1, "weak"))
    assert weak.before("t", Placement(1, (2,))) == ["kill=2", "isr=t=1"]
    assert weak.fault("t", Placement(1, (2,))) == ["kill=1", "start=2", "leader=t=2"]
    assert weak.recover("t", Placement(1, (2,))) == ["start=1", "isr=t=1,2"]


def test_two_brokers_down_kills_the_followers_then_the_leader() -> None:
    safe = next(r for r in runs() if (r.case, r.setting) == (4, "safe"))
    steps = safe.fault("t", P)
    assert steps[:3] == ["kill=2", "kill=3", "isr=t=1"]
    assert steps.index("kill=1") < steps.index("start=2")
    assert steps[-1] == "leader?=t=2,3:30"


def test_the_lab_fails_when_a_weak_run_shows_no_loss_or_a_safe_run_loses_anything() -> None:
    good = lab(result(1, "weak", lost=5, never_arrived=5, exit_code=1), result(1, "safe", producer_errors=7))
    assert good.failures() == []
    no_loss = lab(result(1, "weak", exit_code=0))
    assert [f.split(":")[0] for f in no_loss.failures()] == ["case 1 weak", "case 1 weak"]
    safe_lost = lab(result(3, "safe", not_processed=1, exit_code=1))
    assert safe_lost.failures()[0].startswith("case 3 safe")
    duplicated = lab(result(3, "safe", duplicated=1))
    assert duplicated.failures()


def test_the_results_travel_as_json() -> None:
    before = lab(result(2, "weak", never_arrived=3, exit_code=1))
    assert LabResult.from_dict(before.as_dict()) == before


def test_the_table_and_the_chart_show_the_counts() -> None:
    results = lab(
        result(3, "weak", not_processed=250, exit_code=1),
        result(3, "safe", absorbed=250),
    )
    text = table(results)
    rows = [line for line in text.splitlines() if line.startswith("| 3.")]
    assert len(rows) == 2
    assert rows[0].split(" | ")[-2] == "250"  # not processed, weak
    assert "0 (250 absorbed)" in rows[1]
    assert "Kafka 4.3.1" in text
    svg = chart(results)
    xml.dom.minidom.parseString(svg)  # well-formed
    assert svg.count("<rect") == 2  # the background and the one bar with a count above zero
    assert "250 redelivered, absorbed" in svg


def test_the_table_replaces_only_what_is_between_the_markers() -> None:
    page = f"# Title\n\nbefore\n\n{BEGIN}\nold table\n{END}\n\nafter\n"
    updated = replace_block(page, "new table")
    assert updated == f"# Title\n\nbefore\n\n{BEGIN}\nnew table\n{END}\n\nafter\n"
    assert replace_block("# Title\n", "t").endswith(f"{BEGIN}\nt\n{END}\n")
