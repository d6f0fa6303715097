"""The operator's log: what is an error and what is not."""

from __future__ import annotations

import logging

from durabletopic.app.main import RetriedIsWarning


def test_a_request_kopf_retries_is_a_warning_not_an_error() -> None:
    def record(name: str, message: str) -> logging.LogRecord:
        return logging.LogRecord(name, logging.ERROR, __file__, 1, message, None, None)

    retried = record("kopf._cogs.clients.watching", "Request attempt #1 failed; will retry: GET ... 429")
    escalated = record("kopf._cogs.clients.watching", "Request attempt #9 failed; escalating: GET ...")
    ours = record("durabletopic.loop", "something; will retry: x")
    for each in (retried, escalated, ours):
        assert RetriedIsWarning().filter(each)
    assert (retried.levelname, escalated.levelname, ours.levelname) == ("WARNING", "ERROR", "ERROR")
