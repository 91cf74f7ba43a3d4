"""Test hooks are inert in a user's environment: only the test switch turns them on."""

from __future__ import annotations

from tfwrap import testhooks
from tfwrap.lock import info


def test_a_hook_without_the_switch_is_ignored() -> None:
    env = {testhooks.MIGRATE_CRASH_AFTER: "dual/init"}
    assert testhooks.get(testhooks.MIGRATE_CRASH_AFTER, env) == ""
    assert testhooks.get(testhooks.MIGRATE_CRASH_AFTER, {**env, testhooks.SWITCH: "1"}) == "dual/init"


def test_every_hook_is_named_as_a_test_hook() -> None:
    assert testhooks.ALL and all(name.startswith("TFWRAP_TEST_") for name in testhooks.ALL)


def test_the_clock_offset_needs_the_switch(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv(testhooks.SWITCH, raising=False)
    monkeypatch.setenv(testhooks.CLOCK_OFFSET_SECONDS, "86400")
    plain = info.now()
    monkeypatch.setenv(testhooks.SWITCH, "1")
    assert (info.now() - plain).total_seconds() > 86000
