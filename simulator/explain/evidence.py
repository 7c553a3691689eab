"""The pieces of evidence an explanation is made of, each true for the moment it describes.

Read from a run only through its documented view (``RunResult``: the world at any
moment, the applied events, the logins, syncs, sends and queue history), and judged
with the domain's own rules (``sender.resolve_sender_address``, ``sync.verdict``),
so an explanation can never tell a different story than the run it explains.
"""

from __future__ import annotations

from simulator.domain.contacts import normalize_email
from simulator.domain.display import visible
from simulator.domain.events import SetContactActive, SetContactEmail, SetPropertyContact, UserEvent
from simulator.domain.reasons import REASONS
from simulator.domain.sender import find_sender_user, resolve_sender_address
from simulator.domain.sync import expires_at, verdict
from simulator.domain.world import World
from simulator.engine.result import BlockRecord, InvoiceView, RunResult
from simulator.scenario.times import format_duration

# the sync changes a "later" line lists (a login after sending changes nothing about that send)
_LATER_KINDS = {"resync": "re-sync", "set_sync": "new sync", "change_password": "password change",
                "remove_sync": "sync removed"}


class Evidence:
    """Evidence lines about one run; every method says at which moment its lines are true."""

    def __init__(self, result: RunResult) -> None:
        self.run = result
        self.spec = result.spec
        self.now = result.end

    def iso(self, t: int | None) -> str:
        if t is None:
            return "never"
        return self.spec.iso(t).replace("T", " ").replace(":00Z", "Z")

    # -- Steps 4-5: the property's contacts ------------------------------------------------------
    def property_contacts(self, world: World, pid: str) -> str:
        prop = world.properties[pid]
        if not prop.contacts:
            return f"property {pid} has no contacts"
        parts = []
        for pc in prop.contacts:
            c = world.contacts[pc.contact]
            flags = [n for n, on in (("Email Invoice", pc.email_invoice), ("Primary", pc.primary),
                                     ("Billing", pc.billing)) if on]
            state = "" if c.active else ", inactive"
            parts.append(f"{c.id} <{visible(c.email)}> [{', '.join(flags) or 'no flags'}{state}]")
        return f"property {pid} contacts: " + "; ".join(parts)

    def refused_edits(self, pid: str) -> list[str]:
        """Contact edits the product refused, each with the contact that already had the address then."""
        cids = {pc.contact for pc in self.run.world.properties[pid].contacts}
        out = []
        for i, applied in enumerate(self.run.events):
            ev = applied.event
            if not (applied.refused and isinstance(ev, SetContactEmail) and ev.contact in cids):
                continue
            before = self.run.world_after(i)
            key = normalize_email(ev.email)
            dup = next((c for c in before.contacts.values()
                        if c.id != ev.contact and normalize_email(c.email) == key), None)
            who = f" (already used by {dup.id}{'' if dup.active else ', an inactive contact'})" if dup else ""
            out.append(f"{self.iso(ev.at)}: changing {ev.contact}'s email to {visible(ev.email)} was refused"
                       f"{who} [{applied.refused}] — the contact kept its old address")
        return out

    def late_edits(self, v: InvoiceView) -> tuple[list[str], set[str]]:
        """Contact edits applied after the invoice's email was generated, which it therefore did not get.

        Returns the lines and the contacts whose address changed (their recipients got the old one).
        """
        done = self.run.completion_index(v.batch)
        if done is None:
            return [], set()
        at_completion = self.run.world_after(done)
        cids = {r.contact for r in v.recipients}  # the contacts the email was generated for
        lines: list[str] = []
        moved: set[str] = set()
        after = " after the email was generated"
        for applied in self.run.events[done:]:
            ev = applied.event
            if applied.refused:
                continue
            if isinstance(ev, SetContactEmail) and ev.contact in cids:
                old = at_completion.contacts[ev.contact].email
                lines.append(f"contact {ev.contact}'s email changed at {self.iso(ev.at)} to {visible(ev.email)},"
                             f"{after} for the old address {visible(old)}: recipients are fixed when the batch"
                             " completes, so this invoice's email keeps the old address")
                moved.add(ev.contact)
            elif isinstance(ev, SetContactActive) and ev.contact in cids:
                what = "reactivated" if ev.active else "deactivated"
                lines.append(f"contact {ev.contact} {what} at {self.iso(ev.at)},{after}: it does not change"
                             " this invoice's recipients")
            elif isinstance(ev, SetPropertyContact) and ev.property == v.property:
                flag = "" if ev.email_invoice is None else f" (Email Invoice {'on' if ev.email_invoice else 'off'})"
                lines.append(f"property {ev.property}'s contact {ev.contact} changed{flag} at {self.iso(ev.at)},"
                             f"{after}: it does not change this invoice's recipients")
        return lines, moved

    def refused_sender_events(self, branch_ids: tuple[str, ...], start: int, end: int) -> list[tuple[str, str]]:
        """(line, code) for each event on the queue's sender user the product refused between start and end.

        A refused re-sync changes nothing, so nothing else in the story would show it — yet it is
        exactly what a person tried in order to drain the queue.
        """
        out = []
        for i, applied in enumerate(self.run.events):
            ev = applied.event
            if not applied.refused or not isinstance(ev, UserEvent) or not start <= ev.at <= end:
                continue
            world = self.run.world_after(i)
            sender = resolve_sender_address(branch_ids, world.organization, world.branches, world.regions)
            user = find_sender_user(sender.address, world.users) if sender.address else None
            if user is None or user.id != ev.user:
                continue
            info = REASONS.get(applied.refused)
            why = f": {info.title[0].lower()}{info.title[1:]}" if info else ""
            out.append((f"{self.iso(ev.at)}: {ev.kind} of sender user {ev.user} was refused [{applied.refused}]"
                        f"{why} — nothing changed", applied.refused))
        return out

    # -- Step 2: who the sender is ---------------------------------------------------------------
    def sender_chain(self, world: World, branch_ids: tuple[str, ...]) -> list[str]:
        """The sender resolution (branch → region → Configuration) as ``world`` has it."""
        cfg = world.organization.configuration.invoice_email_from
        cfg_line = (f"Configuration Invoice Email From = {visible(cfg)}" if cfg
                    else "Configuration has no Invoice Email From")
        if len(branch_ids) > 1:
            return [f"the batch spans branches {', '.join(branch_ids)}: a multi-branch batch is sent by"
                    " Configuration's Invoice Email From alone (branch and region settings do not apply)", cfg_line]
        out = []
        for bid in branch_ids:
            b = world.branches.get(bid)
            if b is None:
                continue
            if b.invoicing_email_from:
                return [f"branch {bid} Invoicing Email From = {visible(b.invoicing_email_from)}"]
            out.append(f"branch {bid} has no Invoicing Email From")
            reg = world.regions.get(b.region) if b.region else None
            if reg is not None:
                if reg.invoicing_email_from:
                    out.append(f"region {reg.id} Invoicing Email From = {visible(reg.invoicing_email_from)}")
                    return out
                out.append(f"region {reg.id} has no Invoicing Email From")
        out.append(cfg_line)
        return out

    def sender_user_story(self, world: World, address: str) -> list[str]:
        key = normalize_email(address)
        matches = [u for u in world.users.values() if normalize_email(u.email) == key]
        if not matches:
            return [f"no user has the email {visible(address)}"]
        return [f"user {u.id} has {visible(u.email)} but is inactive" for u in matches if not u.active]

    # -- Step 3: the sender's sync ---------------------------------------------------------------
    def sync_story(self, world: World, uid: str, moment: int) -> list[str]:
        """The user's sync as ``world`` holds it, judged at ``moment`` by the engine's own rule (``verdict``)."""
        st = world.sync.get(uid)
        if st is None:
            return [f"user {uid} has no email sync: SMTP path (platform IPs, SPF must authorise them)"]
        life = world.token_lifetime
        out = [f"user {uid} syncs with {st.provider}; last (re)sync {self.iso(st.synced)}"]
        if not st.supported:
            out.append(f"{st.provider} is not Microsoft 365 or Google Workspace: the platform uses the SMTP path")
            return out
        judged = verdict(st, moment, life)
        exp = expires_at(st, life)
        out.append(f"token last refreshed {self.iso(st.refreshed)} by {st.refreshed_by}; lifetime"
                   f" {format_duration(life)}; {'expired' if moment >= exp else 'expires'} {self.iso(exp)}")
        dead = [x.at for x in self.run.logins(uid) if not x.refreshed and st.refreshed <= x.at <= moment]
        if dead:
            out.append("logins after expiry did not revive it: " + ", ".join(self.iso(t) for t in dead))
        if judged.reason == "sync-password-changed":
            out.append(f"password changed {self.iso(st.password_changed)}, after the last sync"
                       f" {self.iso(st.synced)}: the sync is broken until re-sync")
        return out

    def later_sync_changes(self, uid: str, after: int) -> list[str]:
        """Changes to the user's sync after ``after`` (up to the moment explained), marked as later."""
        rows = [f"{_LATER_KINDS.get(s.kind, s.kind)} at {self.iso(s.at)}" for s in self.run.syncs(uid)
                if after < s.at <= self.now]
        if not rows:
            return []
        return [f"later, after it was sent (not part of this send): user {uid}'s " + "; ".join(rows)]

    def _sync_sender(self, world: World, branch_ids: tuple[str, ...], reason: str | None) -> str | None:
        """``sender X (user u, provider): why its sync blocks`` as ``world`` has it (None: not a sync block)."""
        if reason not in ("sync-token-expired", "sync-password-changed"):
            return None
        sender = resolve_sender_address(branch_ids, world.organization, world.branches, world.regions)
        user = find_sender_user(sender.address, world.users) if sender.address else None
        st = world.sync.get(user.id) if user is not None else None
        if user is None or st is None:
            return None
        if reason == "sync-token-expired":
            detail = f"the token expired {self.iso(expires_at(st, world.token_lifetime))}"
        else:
            detail = f"password changed {self.iso(st.password_changed)} after the last sync"
        return f"sender {visible(sender.address or '')} (user {user.id}, {st.provider}): {detail}"

    def block_line(self, branch_ids: tuple[str, ...], block: BlockRecord, until: int) -> str:
        """One block of a queue's history (``block.at`` to ``until``), naming each sender it held up.

        The sender is the one of that moment; when the settings point at another sender while
        the same block goes on (a second expired token), that sender is named too, from when.
        """
        world = self.run.world_at(block.at)
        head = f"blocked from {self.iso(block.at)} by {block.reason}"
        if block.reason == "sender-not-configured":
            return f"{head}: " + "; ".join(self.sender_chain(world, branch_ids))
        first = self._sync_sender(world, branch_ids, block.reason)
        if first is None:
            return f"{head}: {block.evidence}"
        parts = [f"{head}: {first}"]
        seen = first
        for i, applied in enumerate(self.run.events):
            at = applied.event.at
            if applied.refused or not block.at < at < until:
                continue
            later = self._sync_sender(self.run.world_after(i + 1), branch_ids, block.reason)
            if later is not None and later.split(" (", 1)[0] != seen.split(" (", 1)[0]:
                parts.append(f"then from {self.iso(at)} {later}")
                seen = later
        return "; ".join(parts)
