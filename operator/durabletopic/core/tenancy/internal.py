"""Kafka's internal topics and the well-known system topics: never managed, with or without policies.

A DurableTopic that names one is refused (by the admission policy and at reconcile time) unless the
operator's `internalTopicExceptions` setting names it.
"""

from __future__ import annotations

from collections.abc import Collection

from durabletopic.core.rules import Violation

INTERNAL_PREFIXES = ("__",)
# Topics of Schema Registry and Kafka Connect (their default names).
SYSTEM_TOPICS = ("_schemas", "connect-configs", "connect-offsets", "connect-status")
RULE = "internal-topic"


def is_internal(name: str, exceptions: Collection[str] = ()) -> bool:
    if name in exceptions:
        return False
    return name.startswith(INTERNAL_PREFIXES) or name in SYSTEM_TOPICS


def message(field: str, name: str) -> str:
    return (
        f"{field} ({name}) is an internal or system topic of Kafka or its tools: the operator never manages it "
        "(an operator setting, internalTopicExceptions, may name exceptions)"
    )


def check_topic_name(name: str, field: str, exceptions: Collection[str] = ()) -> list[Violation]:
    return [Violation(field, RULE, message(field, name))] if is_internal(name, exceptions) else []


def cel_expression(exceptions: str) -> str:
    """The same test in CEL, on `variables.topicName`; `exceptions` is a CEL list literal."""
    names = ", ".join(f"'{n}'" for n in SYSTEM_TOPICS)
    starts = " || ".join(f"variables.topicName.startsWith('{p}')" for p in INTERNAL_PREFIXES)
    return f"!({starts} || variables.topicName in [{names}]) || variables.topicName in {exceptions}"


def cel_message() -> str:
    return (
        'variables.topicField + " (" + variables.topicName + ") is an internal or system topic of Kafka or its '
        'tools: the operator never manages it (an operator setting, internalTopicExceptions, may name exceptions)"'
    )
