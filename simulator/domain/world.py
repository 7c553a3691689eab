"""The world as it stands at one instant, and the one function that applies a timeline event to it.

``apply(world, event)`` is the only place a timeline event's rule lives: who may log
in, what a re-sync restores, which contact edit is refused, what a setting change
touches. The engine only schedules (timeline, polls, retries, expiries) and calls
it; the stepper and the timeline page replay the same function, so they cannot
drift from the run. It is pure: the world is frozen and replaced, never mutated
(its mappings are fresh dicts per change and nobody writes to them), and the result
says what the trace records and what the engine must reschedule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from simulator.domain.contacts import find_duplicate
from simulator.domain.entities import (
    Branch,
    Contact,
    Organization,
    Property,
    PropertyContact,
    Region,
    format_time,
)
from simulator.domain.events import (
    ActivateUser,
    ChangePassword,
    CompleteBatch,
    DeactivateUser,
    DnsDelete,
    DnsSet,
    Event,
    Login,
    RemoveSync,
    Resync,
    SetContactActive,
    SetContactEmail,
    SetInvoicingEmailFrom,
    SetPropertyContact,
    SetSync,
    SetTokenLifetime,
)
from simulator.domain.pmap import with_entry
from simulator.domain.statuses import BatchStatus
from simulator.domain.sync import SyncState, change_password, expires_at, login, resync

#: One trace line: the event name and its fields, in the order they are written.
TraceRecord = tuple[str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class World:
    """Everything a timeline event can change, as the product's records hold it.

    The mappings keep the scenario file's order (iteration order reaches the trace).
    """

    start: datetime
    token_lifetime: int
    organization: Organization
    branches: Mapping[str, Branch]
    regions: Mapping[str, Region]
    users: Mapping[str, Any]  # id -> User
    sync: Mapping[str, SyncState | None]
    contacts: Mapping[str, Contact]
    properties: Mapping[str, Property]
    batch_status: Mapping[str, str]

    def iso(self, t: int) -> str:
        return format_time(self.start, t)

    def expiry_of(self, user: str) -> int | None:
        """When ``user``'s token dies under the current lifetime (None: no sync)."""
        st = self.sync.get(user)
        return None if st is None else expires_at(st, self.token_lifetime)


@dataclass(frozen=True, slots=True)
class DnsChange:
    """A record set replaced (``value`` given) or deleted (``value`` None) by a timeline event."""

    name: str
    type: str
    value: str | tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class Applied:
    """What applying one event did: the new world, the trace lines, and what the engine must redo.

    ``refused`` is the reason code when the product refused the change (the world is
    unchanged then). ``sender_changed``: cached sender decisions are stale.
    ``expiry_users``: users whose token expiry must be (re)scheduled. ``properties``:
    properties whose Draft status must be recomputed. ``completes``: the batch whose
    emails must be generated now. ``refreshed``: for a login, whether it refreshed
    the token (None: the user has no sync).
    """

    world: World
    records: tuple[TraceRecord, ...] = ()
    refused: str | None = None
    sender_changed: bool = False
    expiry_users: tuple[str, ...] = ()
    properties: tuple[str, ...] = ()
    completes: str | None = None
    dns: DnsChange | None = None
    refreshed: bool | None = None


def _with(mapping: Mapping[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of ``mapping`` with one entry replaced, keeping the entries' order."""
    out = dict(mapping)
    out[key] = value
    return out


def _with_sync(world: World, user: str, state: SyncState | None) -> World:
    """``world`` with one user's sync replaced: the most frequent change (logins, re-syncs, passwords).

    Spelled out rather than ``dataclasses.replace``, which looks every field up by name; a run
    applies one per sender event.
    """
    return World(world.start, world.token_lifetime, world.organization, world.branches, world.regions,
                 world.users, _with(world.sync, user, state), world.contacts, world.properties, world.batch_status)


def _properties_of(world: World, contact: str) -> tuple[str, ...]:
    return tuple(pid for pid, prop in world.properties.items() if any(pc.contact == contact for pc in prop.contacts))


def apply(world: World, event: Event) -> Applied:
    """Apply ``event`` (at ``event.at``) to ``world``; see ``Applied`` for what comes back."""
    handler = _HANDLERS.get(type(event))
    if handler is None:  # pragma: no cover - every type in the Event union has a handler (tested)
        raise TypeError(f"no rule for timeline event {type(event).__name__}")
    return handler(world, event)


def _complete_batch(world: World, ev: CompleteBatch) -> Applied:
    if world.batch_status[ev.batch] != BatchStatus.DRAFT:
        return Applied(world, (("batch.already_completed", {"batch": ev.batch}),))
    # an overlay, not a copy: a copy per completion made a run quadratic in its batches (domain/pmap.py)
    return Applied(replace(world, batch_status=with_entry(world.batch_status, ev.batch, BatchStatus.SENT.value)),
                   completes=ev.batch)


def _login(world: World, ev: Login) -> Applied:
    st = world.sync.get(ev.user)
    fields: dict[str, Any] = {"user": ev.user, "kind": ev.kind, "line": ev.loc}
    if st is None:
        return Applied(world, (("user.login", fields),), sender_changed=True, refreshed=False)
    new, refreshed = login(st, ev.at, world.token_lifetime)
    fields.update(refreshed=refreshed, expires=world.iso(expires_at(new, world.token_lifetime)))
    return Applied(_with_sync(world, ev.user, new), (("user.login", fields),),
                   sender_changed=True, expiry_users=(ev.user,), refreshed=refreshed)


def _resync(world: World, ev: Resync | SetSync) -> Applied:
    """``set_sync`` creates (or replaces) a sync; ``resync`` re-authorises an existing one only (§8)."""
    st = world.sync.get(ev.user)
    if isinstance(ev, Resync) and st is None:
        reason = "no-sync-to-resync"
        return Applied(world, (("event.refused", {"kind": ev.kind, "user": ev.user, "reason": reason,
                                                  "line": ev.loc}),), refused=reason)
    provider = ev.provider if isinstance(ev, SetSync) else None
    new = resync(st, provider, ev.at)
    name = "sync.resynced" if isinstance(ev, Resync) else "sync.set"
    return Applied(_with_sync(world, ev.user, new),
                   ((name, {"user": ev.user, "provider": new.provider}),), sender_changed=True,
                   expiry_users=(ev.user,))


def _change_password(world: World, ev: ChangePassword) -> Applied:
    st = world.sync.get(ev.user)
    new_world = world if st is None else _with_sync(world, ev.user, change_password(st, ev.at))
    return Applied(new_world, (("user.password_changed", {"user": ev.user}),), sender_changed=True)


def _remove_sync(world: World, ev: RemoveSync) -> Applied:
    return Applied(_with_sync(world, ev.user, None), (("sync.removed", {"user": ev.user}),),
                   sender_changed=True)


def _set_user_active(world: World, ev: DeactivateUser | ActivateUser) -> Applied:
    active = isinstance(ev, ActivateUser)
    user = replace(world.users[ev.user], active=active)
    name = "user.activated" if active else "user.deactivated"
    return Applied(replace(world, users=_with(world.users, ev.user, user)), ((name, {"user": ev.user}),),
                   sender_changed=True)


def _set_contact_email(world: World, ev: SetContactEmail) -> Applied:
    dup = find_duplicate(world.contacts.values(), ev.email, ignore_id=ev.contact)
    if dup is not None:
        reason = "duplicate-email-rejected"
        return Applied(world, (("contact.refused", {"contact": ev.contact, "email": ev.email, "reason": reason,
                                                    "existing_contact": dup.id, "existing_active": dup.active}),),
                       refused=reason)
    contact = replace(world.contacts[ev.contact], email=ev.email)
    new = replace(world, contacts=_with(world.contacts, ev.contact, contact))
    return Applied(new, (("contact.changed", {"contact": ev.contact, "email": ev.email}),),
                   properties=_properties_of(new, ev.contact))


def _set_contact_active(world: World, ev: SetContactActive) -> Applied:
    contact = replace(world.contacts[ev.contact], active=ev.active)
    new = replace(world, contacts=_with(world.contacts, ev.contact, contact))
    return Applied(new, (("contact.changed", {"contact": ev.contact, "active": ev.active}),),
                   properties=_properties_of(new, ev.contact))


def _set_property_contact(world: World, ev: SetPropertyContact) -> Applied:
    prop = world.properties[ev.property]
    links = list(prop.contacts)
    for i, pc in enumerate(links):
        if pc.contact == ev.contact:
            links[i] = replace(
                pc,
                email_invoice=pc.email_invoice if ev.email_invoice is None else ev.email_invoice,
                primary=pc.primary if ev.primary is None else ev.primary,
                billing=pc.billing if ev.billing is None else ev.billing,
            )
            break
    else:
        links.append(PropertyContact(ev.contact, bool(ev.email_invoice), bool(ev.primary), bool(ev.billing)))
    new = replace(world, properties=_with(world.properties, ev.property, replace(prop, contacts=tuple(links))))
    return Applied(new, (("property.changed", {"property": ev.property, "contact": ev.contact,
                                               "email_invoice": ev.email_invoice}),),
                   properties=(ev.property,))


def _set_invoicing_email_from(world: World, ev: SetInvoicingEmailFrom) -> Applied:
    if ev.branch is not None:
        branch = replace(world.branches[ev.branch], invoicing_email_from=ev.email)
        new = replace(world, branches=_with(world.branches, ev.branch, branch))
        where = f"branch:{ev.branch}"
    elif ev.region is not None:
        region = replace(world.regions[ev.region], invoicing_email_from=ev.email)
        new = replace(world, regions=_with(world.regions, ev.region, region))
        where = f"region:{ev.region}"
    else:
        org = world.organization
        new = replace(world, organization=replace(org, configuration=replace(org.configuration,
                                                                             invoice_email_from=ev.email)))
        where = "configuration"
    return Applied(new, (("settings.changed", {"where": where, "invoicing_email_from": ev.email}),),
                   sender_changed=True)


def _dns_set(world: World, ev: DnsSet) -> Applied:
    value = list(ev.value) if isinstance(ev.value, tuple) else ev.value
    return Applied(world, (("dns.changed", {"name": ev.name, "type": ev.type, "value": value, "op": "set"}),),
                   dns=DnsChange(ev.name, ev.type, ev.value))


def _dns_delete(world: World, ev: DnsDelete) -> Applied:
    return Applied(world, (("dns.changed", {"name": ev.name, "type": ev.type, "value": None, "op": "delete"}),),
                   dns=DnsChange(ev.name, ev.type, None))


def _set_token_lifetime(world: World, ev: SetTokenLifetime) -> Applied:
    """Every token's expiry moves to its last refresh + the new lifetime (nothing else changes)."""
    synced = tuple(uid for uid, st in world.sync.items() if st is not None and st.supported)
    return Applied(replace(world, token_lifetime=ev.lifetime),
                   (("settings.token_lifetime", {"lifetime": ev.lifetime, "previous": world.token_lifetime}),),
                   sender_changed=True, expiry_users=synced)


_HANDLERS: dict[type, Any] = {
    CompleteBatch: _complete_batch,
    Login: _login,
    Resync: _resync,
    SetSync: _resync,
    ChangePassword: _change_password,
    RemoveSync: _remove_sync,
    DeactivateUser: _set_user_active,
    ActivateUser: _set_user_active,
    SetContactEmail: _set_contact_email,
    SetContactActive: _set_contact_active,
    SetPropertyContact: _set_property_contact,
    SetInvoicingEmailFrom: _set_invoicing_email_from,
    DnsSet: _dns_set,
    DnsDelete: _dns_delete,
    SetTokenLifetime: _set_token_lifetime,
}
