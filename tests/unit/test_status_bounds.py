"""No object can make its own status larger than the API server stores: messages and drift are cut."""

from __future__ import annotations

import json

from durabletopic.core.conditions import MAX_MESSAGE
from durabletopic.core.drift import MAX_DRIFT_ENTRIES, MAX_DRIFT_VALUE, Difference, drift_entries
from durabletopic.core.model import Recorded, TopicError
from durabletopic.core.outcome import Subject, unreadable
from durabletopic.core.reasons import DriftAction, Severity
from durabletopic.core.status import next_status


def test_a_huge_kafka_message_is_cut_in_the_condition() -> None:
    subject = Subject("orders", {}, 1, Recorded())
    outcome = unreadable(subject, TopicError("POLICY_VIOLATION", "x" * 100_000, False))
    status = next_status({}, "orders", 1, outcome, "2026-11-28T12:00:00Z")
    assert status is not None
    assert all(len(c["message"]) <= MAX_MESSAGE for c in status["conditions"])


def test_drift_entries_are_bounded_weakening_first() -> None:
    differences = [Difference(f"key.{i}", "a" * 10_000, "b" * 10_000, Severity.BENIGN) for i in range(300)]
    differences.append(Difference("min.insync.replicas", "2", "1", Severity.WEAKENING))
    entries = drift_entries(differences, [], DriftAction.REPORTED, "now")
    assert len(entries) == MAX_DRIFT_ENTRIES
    assert entries[0]["key"] == "min.insync.replicas"
    assert all(len(value) <= MAX_DRIFT_VALUE for entry in entries for value in entry.values())
    assert len(json.dumps(entries)) < 64 * 1024
