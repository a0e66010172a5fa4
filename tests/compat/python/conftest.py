"""Shared settings for the Python compatibility suites.

The broker address comes from KASKADE_BOOTSTRAP (set by tests/compat/run.sh),
default 127.0.0.1:9092. Every suite makes its own uniquely named topics, so the
suites can run against one broker (Kaskade or Apache Kafka) side by side.
"""

import os
import time
import uuid

import pytest

BOOTSTRAP = os.environ.get("KASKADE_BOOTSTRAP", "127.0.0.1:9092")

# Generous but bounded: every wait in the suites uses this deadline.
TIMEOUT_S = float(os.environ.get("KASKADE_COMPAT_TIMEOUT", "30"))


def unique_topic(prefix: str) -> str:
    """A topic name no other run uses: [a-z0-9-] only (no '.'/'_' mixing)."""
    return f"compat-{prefix}-{uuid.uuid4().hex[:12]}"


def wait_until(predicate, what: str, timeout: float = TIMEOUT_S, interval: float = 0.2):
    """Polls predicate() until it returns a truthy value; fails the test on timeout.

    predicate may raise: the last exception is reported if time runs out.
    """
    deadline = time.monotonic() + timeout
    last_exc = None
    last_val = None
    while True:
        try:
            last_val = predicate()
            if last_val:
                return last_val
        except Exception as exc:  # noqa: BLE001 - reported below
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = f"last error: {last_exc!r}" if last_exc else f"last value: {last_val!r}"
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} ({detail})")
        time.sleep(interval)


@pytest.fixture(scope="session")
def bootstrap() -> str:
    return BOOTSTRAP
