"""Fixtures for the check tests: each test starts a fresh check session (hints start again at the nudge)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ftlearn.checks.core import STRICT_ENV, CheckResult, reset_session


@pytest.fixture(autouse=True)
def fresh_check_session():
    """Forget earlier wrong tries, as a new notebook kernel would."""
    reset_session()
    yield
    reset_session()


@pytest.fixture
def lenient(monkeypatch):
    """Checks report wrong answers instead of raising (the suite runs them strict): for the check tests."""
    monkeypatch.delenv(STRICT_ENV, raising=False)


def _second_try(check_fn: Callable[..., CheckResult], fn: Callable) -> CheckResult:
    reset_session()
    check_fn(fn)  # the first wrong try gets the nudge about the kind of mistake
    return check_fn(fn)  # the second gets the specific hint


@pytest.fixture
def second_try() -> Callable[[Callable[..., CheckResult], Callable], CheckResult]:
    """`second_try(check_fn, fn)`: the verdict a learner sees on their second wrong try (the specific hint)."""
    return _second_try
