"""Mailbox-sync validity (guide Step 3): token lifetime, password changes, providers.

The token lives ``token_lifetime`` from its last refresh; a refresh is a (re)sync or
a login *while the token is still alive*. After expiry only a re-sync revives it.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.domain.entities import Sync
from simulator.domain.vocabulary import SYNC_PROVIDERS_SUPPORTED


@dataclass(frozen=True, slots=True)
class SyncState:
    """A user's sync at one instant: provider, last (re)sync, last token refresh and any pending password change."""

    provider: str
    synced: int
    refreshed: int  # last refresh of the token: max(synced, last refreshing login)
    refreshed_by: str  # "sync" | "login" — for explanations
    last_login: int | None
    password_changed: int | None
    # The password changed after the last (re)sync. A flag, not a comparison of times: a change
    # and a re-sync at the same second are ordered by the file (DESIGN §8), which times cannot say.
    password_pending: bool = False

    @property
    def supported(self) -> bool:
        return self.provider in SYNC_PROVIDERS_SUPPORTED


@dataclass(frozen=True, slots=True)
class SyncVerdict:
    """Whether the platform can send through a sync now, and if not, the reason code and evidence."""

    ok: bool
    reason: str | None  # sync-token-expired | sync-password-changed | sync-provider-unsupported | None
    expires_at: int | None  # when the token dies (None: unsupported provider, no token)
    evidence: str


def initial_state(sync: Sync) -> SyncState:
    """§8: the initial ``last_login`` counts as the last refresh, alive or not.

    ``password_changed`` equal to ``synced`` means the re-sync came after the change (§8).
    """
    login = sync.last_login
    pending = sync.password_changed is not None and sync.password_changed > sync.synced
    if login is not None and login > sync.synced:
        return SyncState(sync.provider, sync.synced, login, "login", login, sync.password_changed, pending)
    return SyncState(sync.provider, sync.synced, sync.synced, "sync", login, sync.password_changed, pending)


def expires_at(state: SyncState, lifetime: int) -> int:
    return state.refreshed + lifetime


def login(state: SyncState, t: int, lifetime: int) -> tuple[SyncState, bool]:
    """A login refreshes the token only while it is alive; returns (state, refreshed?)."""
    if t < expires_at(state, lifetime):
        return SyncState(state.provider, state.synced, max(state.refreshed, t), "login", t, state.password_changed,
                         state.password_pending), True
    return SyncState(state.provider, state.synced, state.refreshed, state.refreshed_by, t, state.password_changed,
                     state.password_pending), False


def resync(state: SyncState | None, provider: str | None, t: int) -> SyncState:
    """A fresh token; ``provider`` None keeps the existing sync's (a re-sync needs one: see world.apply)."""
    if provider is None:
        if state is None:
            raise ValueError("a re-sync needs an existing sync or a provider")
        provider = state.provider
    last_login = state.last_login if state else None
    pw = state.password_changed if state else None
    return SyncState(provider, t, t, "sync", last_login, pw, False)


def change_password(state: SyncState, t: int) -> SyncState:
    return SyncState(state.provider, state.synced, state.refreshed, state.refreshed_by, state.last_login, t, True)


def verdict(state: SyncState, now: int, lifetime: int) -> SyncVerdict:
    """Can the platform send through this sync at ``now``? Ordered as the guide lists causes."""
    if not state.supported:
        return SyncVerdict(
            False, "sync-provider-unsupported", None,
            f"provider {state.provider!r} is not Microsoft 365 or Google: SMTP path",
        )
    exp = expires_at(state, lifetime)
    if state.password_pending:
        return SyncVerdict(False, "sync-password-changed", exp, "password changed after the last sync")
    if now >= exp:
        return SyncVerdict(False, "sync-token-expired", exp, "token lifetime passed since the last refresh")
    return SyncVerdict(True, None, exp, "sync valid")
