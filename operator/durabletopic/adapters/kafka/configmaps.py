"""A topic's configs as read from Kafka: (overrides, effective), with one string object per distinct
name and value, and one dict for every equal set of configs.

Kafka answers each topic's full read with about forty entries, nearly all the same names and default
values on every topic. Kept as they arrive, every topic the operator remembers holds its own copy of
each string, several KB a topic; interned, the names and common values are held once. Most topics of a
cluster also have the very same configs: their reads share one dict (the operator never changes a
read's configs once built).
"""

from __future__ import annotations

from sys import intern

# Distinct sets of configs kept for sharing; past this many the table starts again (the dicts already
# shared stay shared).
SHARED_SETS = 512

_shared: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}


def shared(configs: dict[str, str]) -> dict[str, str]:
    """The one dict held for configs equal to these (these, the first time)."""
    key = tuple(configs.items())
    found = _shared.get(key)
    if found is not None:
        return found
    if len(_shared) >= SHARED_SETS:
        _shared.clear()
    _shared[key] = configs
    return configs


class ConfigMaps:
    __slots__ = ("_effective", "_overrides")

    def __init__(self) -> None:
        self._overrides: dict[str, str] = {}
        self._effective: dict[str, str] = {}

    def add(self, name: str, value: str | None, *, override: bool) -> None:
        """An entry without a value (a sensitive one) is left out of both."""
        if value is None:
            return
        name, value = intern(name), intern(value)
        self._effective[name] = value
        if override:
            self._overrides[name] = value

    def __contains__(self, name: str) -> bool:
        return name in self._effective

    def done(self) -> tuple[dict[str, str], dict[str, str]]:
        """(overrides, effective), shared with every earlier read of equal configs."""
        return shared(self._overrides), shared(self._effective)
