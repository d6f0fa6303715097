"""What a drift means, decided without Kafka or Kubernetes."""

from __future__ import annotations

from durabletopic.core.conditions import drifted_condition
from durabletopic.core.drift import REPORTED, REVERTED, Difference, judge_drift
from durabletopic.core.plan import AlterConfigs, TopicPlan
from durabletopic.core.reasons import Severity

WEAK = Difference("min.insync.replicas", "2", "1", Severity.WEAKENING)
GONE = Difference("topic", "present", "absent", Severity.WEAKENING)


def test_enforced_drift_is_reverted_and_counted_every_time() -> None:
    first = TopicPlan(actions=(AlterConfigs("t", {"min.insync.replicas": "2"}),), differences=(WEAK,))
    verdict = judge_drift("t", first, TopicPlan(), [], "now", fixed={"min.insync.replicas"})
    assert verdict.action == REVERTED and verdict.counted == ((WEAK, REVERTED),) and verdict.entries == []
    assert [reason for _, reason, _ in verdict.events] == ["DriftDetected", "DriftReverted"]
    assert "weakening" in verdict.events[0][2]


def test_recreated_topic_says_its_data_was_lost() -> None:
    verdict = judge_drift(
        "t",
        TopicPlan(actions=(AlterConfigs("t", {}),), differences=(GONE,)),
        TopicPlan(),
        [],
        "now",
        {"topic"},
    )
    kind, _, message = verdict.events[1]
    assert kind == "Warning" and "data was lost" in message


def test_reported_drift_is_announced_once_and_keeps_first_seen() -> None:
    first = TopicPlan(differences=(WEAK,), enforced=False)
    start = judge_drift("t", first, first, [], "t1")
    assert start.action == REPORTED and start.counted == ((WEAK, REPORTED),) and len(start.events) == 1
    later = judge_drift("t", first, first, start.entries, "t2")
    assert later.counted == () and later.events == ()
    assert later.entries[0]["firstSeen"] == "t1" and later.entries[0]["action"] == REPORTED
    assert drifted_condition(later.entries).status is True
    assert drifted_condition([]).status is False


def test_revert_is_judged_by_the_action_not_by_a_lagging_read() -> None:
    first = TopicPlan(actions=(AlterConfigs("t", {"min.insync.replicas": "2"}),), differences=(WEAK,))
    still_old = TopicPlan(differences=(WEAK,))
    verdict = judge_drift("t", first, still_old, [], "now", fixed={"min.insync.replicas"})
    assert verdict.reverted and verdict.entries == []
    assert [reason for _, reason, _ in verdict.events] == ["DriftDetected", "DriftReverted"]


def test_drift_that_went_away_clears() -> None:
    reported = judge_drift(
        "t", TopicPlan(differences=(WEAK,), enforced=False), TopicPlan(differences=(WEAK,)), [], "t1"
    )
    gone = judge_drift("t", TopicPlan(enforced=False), TopicPlan(), reported.entries, "t2")
    assert gone.entries == [] and gone.events == () and gone.counted == ()
    condition = drifted_condition(gone.entries, reverted=gone.reverted)
    assert (condition.status, condition.reason) == (False, "DriftResolved")
