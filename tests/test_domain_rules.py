"""Domain rules pinned at their boundaries, and what mutation testing of simulator/domain/ found unpinned.

Each test here fails for a mutant that ``make mutate`` once left alive (docs/testing.md): a
comparison moved by one, a branch dropped, a default changed. Exact values throughout.
"""

from __future__ import annotations

import pytest
from helpers import run

from simulator.domain.entities import DAY, Sync
from simulator.domain.sync import expires_at, initial_state, login, verdict

LIFE = 90 * DAY


# -- the token's expiry instant (DESIGN §8: alive on [refresh, refresh + lifetime)) ------------------


@pytest.mark.parametrize(("offset", "refreshed"), [(-1, True), (0, False), (1, False)])
def test_a_login_at_the_expiry_instant_is_too_late(offset: int, refreshed: bool) -> None:
    state = initial_state(Sync("google", synced=0))
    exp = expires_at(state, LIFE)
    assert exp == 90 * DAY
    after, ok = login(state, exp + offset, LIFE)
    assert ok is refreshed
    assert after.last_login == exp + offset
    assert expires_at(after, LIFE) == (exp + offset + LIFE if refreshed else exp)
    assert after.refreshed_by == ("login" if refreshed else "sync")
    assert verdict(after, exp, LIFE).reason == (None if refreshed else "sync-token-expired")


@pytest.mark.parametrize(("login_at", "status", "reason"), [
    ("+23h59m59s", "Sent", None),  # one second before the token dies: the login refreshes it
    ("+1d", "In Queue", "sync-token-expired"),  # at the instant: dead, the login is too late
    ("+1d1s", "In Queue", "sync-token-expired"),
])
def test_the_engine_applies_the_expiry_instant(login_at: str, status: str, reason: str | None) -> None:
    users = "  - {id: u1, email: ar@acme.example, sync: {provider: google, synced: -89d}}"  # dies at +1d
    r = run(users=users, timeline=f"  - {{at: {login_at}, login: u1}}\n  - {{at: +2d, complete_batch: B1}}",
            extra="until: +3d")
    v = r.invoice("INV-1")
    assert v is not None and (v.email_status, v.reason) == (status, reason)
