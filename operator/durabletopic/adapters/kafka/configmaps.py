"""A topic's configs as read from Kafka: (overrides, effective), with one string object per distinct
name and value.

Kafka answers each topic's full read with about forty entries, nearly all the same names and default
values on every topic. Kept as they arrive, every topic the operator remembers holds its own copy of
each string, several KB a topic; interned, the names and common values are held once.
"""

from __future__ import annotations

from sys import intern


class ConfigMaps:
    __slots__ = ("effective", "overrides")

    def __init__(self) -> None:
        self.overrides: dict[str, str] = {}
        self.effective: dict[str, str] = {}

    def add(self, name: str, value: str | None, *, override: bool) -> None:
        """An entry without a value (a sensitive one) is left out of both."""
        if value is None:
            return
        name, value = intern(name), intern(value)
        self.effective[name] = value
        if override:
            self.overrides[name] = value
