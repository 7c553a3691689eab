"""What chaos run *k* injects: a pure function of (chaos seed, run index, base scenario).

A run's plan must be rebuildable anywhere (a pool worker, a Dask node, the parent while it
shrinks, a colleague with the same command line), so every draw comes from one
``random.Random`` seeded with a string of the chaos seed and run index — never the global
generator — and every choice is made over sorted lists taken from the scenario.

Each injected item is either a ``faults:`` entry, a timeline event to add, or a timeline
``login`` to drop. An item carries both the frozen model object (to build the run's
``Scenario`` cheaply with ``dataclasses.replace``) and its one-line flow YAML (to write the
reproduction file); :func:`edit_for` and :func:`build` apply the same items in the same order,
and the tests check that loading the edited text gives the same faults and timeline.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from simulator.domain.contacts import domain_of
from simulator.domain.entities import DAY
from simulator.domain.events import Event, Login, make_event
from simulator.domain.faults import FAULT_KINDS, FAULT_SPECS, SMTP_STAGES, Fault
from simulator.scenario.edit import ListEdit, ScenarioEdit, flow
from simulator.scenario.model import Scenario
from simulator.scenario.times import format_duration, format_offset

# from the fault table, in its order
SMTP_KINDS: tuple[str, ...] = tuple(k for k in FAULT_KINDS if FAULT_SPECS[k].protocol == "smtp")
DNS_KINDS: tuple[str, ...] = tuple(k for k in FAULT_KINDS if FAULT_SPECS[k].protocol == "dns")
EVENT_ITEM_KINDS: tuple[str, ...] = ("change_password", "skip_login", "resync", "deactivate_user")
#: every kind ``--kinds`` accepts, in the order summaries list them
CHAOS_KINDS: tuple[str, ...] = (*SMTP_KINDS, *DNS_KINDS, *EVENT_ITEM_KINDS)

_DURATIONS = (300, 900, 1800, 3600, 2 * 3600, 6 * 3600, 12 * 3600, DAY)
_SLOW_DELAYS = (30, 120, 600, 3600)
_PROBABILITIES = (0.1, 0.25, 0.5, 1.0)
_SPF_NAME = re.compile(r"(?:include:|redirect=)([A-Za-z0-9_.-]+)", re.IGNORECASE)
_DNS_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)+")


@dataclass(frozen=True, slots=True)
class Item:
    """One injected change. Exactly one of ``fault``, ``event``, ``remove`` is set."""

    kind: str
    text: str  # the faults:/timeline: entry as flow YAML, or a note naming the dropped login
    fault: Fault | None = None  # index is assigned when the run is built (it depends on the subset)
    event: Event | None = None
    remove: int | None = None  # position in the base timeline of the login to drop

    def describe(self) -> str:
        return f"timeline: drop {self.text}" if self.remove is not None else (
            f"faults: + {self.text}" if self.fault is not None else f"timeline: + {self.text}")


@dataclass(frozen=True, slots=True)
class RunPlan:
    run: int
    seed: int  # the run's scenario seed (seeded fault draws differ per run)
    items: tuple[Item, ...]


@dataclass(frozen=True, slots=True)
class Targets:
    """What in this scenario is worth breaking: the names and ids faults and events may aim at."""

    horizon: int
    recipient_domains: tuple[str, ...]
    dns_names: tuple[str, ...]
    synced_users: tuple[str, ...]
    users: tuple[str, ...]
    logins: tuple[int, ...]  # base timeline positions of login events

    @staticmethod
    def of(scn: Scenario) -> Targets:
        rcpt = {domain_of(c.email.strip()) for c in scn.contacts if "@" in c.email}
        rcpt |= {m.domain.lower() for m in scn.mailboxes}
        rcpt = {d for d in rcpt if _DNS_NAME.fullmatch(d)}  # an invalid address has no domain to break
        org = scn.organization
        senders = {u.email for u in scn.users} | {org.configuration.invoice_email_from or ""}
        senders |= {r.invoicing_email_from or "" for r in org.regions}
        senders |= {b.invoicing_email_from or "" for b in org.branches}
        names = {domain_of(a) for a in senders if "@" in a} | rcpt
        for rec in scn.dns.records:
            if rec.type in ("TXT", "SPF") and rec.text.lower().startswith("v=spf1"):
                names |= {m.lower() for m in _SPF_NAME.findall(rec.text)}
            elif rec.type == "MX":
                host = rec.text.split()[-1].rstrip(".").lower() if rec.text.split() else ""
                names.add(host)
        names |= {p.spf_include.lower() for p in scn.providers if p.spf_include}
        names = {n for n in names if _DNS_NAME.fullmatch(n)}
        return Targets(
            horizon=horizon(scn),
            recipient_domains=tuple(sorted(rcpt)),
            dns_names=tuple(sorted(names)),
            synced_users=tuple(u.id for u in scn.users if u.sync is not None),
            users=tuple(u.id for u in scn.users),
            logins=tuple(i for i, e in enumerate(scn.timeline) if e.kind == "login"),
        )

    def feasible(self, kind: str) -> bool:
        if kind in ("change_password", "resync"):
            return bool(self.synced_users)
        if kind == "deactivate_user":
            return bool(self.users)
        if kind == "skip_login":
            return bool(self.logins)
        if kind in DNS_KINDS:
            return bool(self.dns_names)
        return True


def horizon(scn: Scenario) -> int:
    """The window injected times fall in: the run's ``until``, else a day past the last scheduled thing."""
    if scn.until is not None:
        return max(0, scn.until)
    ts = [e.at for e in scn.timeline] + [x.when for x in scn.expect if x.when is not None]
    return max([0, *ts]) + DAY


def _minute(rng: random.Random, hi: int) -> int:
    return rng.randrange(0, hi // 60 + 1) * 60


def _fault(rng: random.Random, kind: str, t: Targets) -> Item:
    at: int | None = None
    for_: int | None = None
    stage: str | None = None
    probability = 1.0
    delay = 0
    target: str | None
    if kind in DNS_KINDS:
        target = rng.choice(t.dns_names)
        at, for_ = _minute(rng, t.horizon), rng.choice(_DURATIONS)
        probability = rng.choice((0.5, 1.0))
    else:
        target = rng.choice((*t.recipient_domains, None))
        if kind == "outage":
            at = _minute(rng, t.horizon)
            for_ = rng.choice(_DURATIONS) if rng.random() < 0.9 else None
            probability = rng.choice((0.5, 1.0))
        else:
            stage = rng.choice((*SMTP_STAGES, None))
            probability = rng.choice(_PROBABILITIES)
            if rng.random() < 0.6:
                at, for_ = _minute(rng, t.horizon), rng.choice(_DURATIONS)
            if FAULT_SPECS[kind].effect == "delay":
                delay = rng.choice(_SLOW_DELAYS)
    f = Fault(index=-1, kind=kind, at=at, for_=for_, stage=stage, probability=probability, target=target,
              delay=delay)
    return fault_item(f)


def fault_item(f: Fault) -> Item:
    """The item for fault ``f`` with its flow YAML (also how the shrinker writes a simplified fault)."""
    fields: dict[str, object] = {"kind": f.kind}
    at, for_, stage, probability, delay, target = f.at, f.for_, f.stage, f.probability, f.delay, f.target
    if at is not None:
        fields["at"] = format_offset(at)
    if for_ is not None:
        fields["for"] = format_duration(for_)
    if stage is not None:
        fields["stage"] = stage
    if probability != 1.0:
        fields["probability"] = probability
    if delay:
        fields["delay"] = format_duration(delay)
    if target is not None:
        fields["target"] = target
    text = "{" + ", ".join(f"{k}: {v if k in ('at', 'for', 'delay') else flow(v)}" for k, v in fields.items()) + "}"
    return Item(f.kind, text, fault=replace(f, index=-1, loc=""))


def _event(rng: random.Random, kind: str, t: Targets) -> Item:
    at = _minute(rng, t.horizon)
    user = rng.choice(t.users if kind == "deactivate_user" else t.synced_users)
    return Item(kind, f"{{at: {format_offset(at)}, {kind}: {flow(user)}}}",
                event=make_event(kind, at=at, user=user))


def generate(scn: Scenario, chaos_seed: int, run: int, *, max_faults: int = 4,
             kinds: Sequence[str] = CHAOS_KINDS, targets: Targets | None = None) -> RunPlan:
    """The items run ``run`` injects into ``scn`` (1 to ``max_faults`` of them, from ``kinds``)."""
    rng = random.Random(f"mailsim-chaos:{chaos_seed}:{run}")
    t = targets or Targets.of(scn)
    run_seed = rng.randrange(2**31)
    usable = [k for k in CHAOS_KINDS if k in kinds and t.feasible(k)]
    items: list[Item] = []
    dropped: set[int] = set()
    n = rng.randint(1, max(1, max_faults)) if usable else 0
    for _ in range(n):
        kind = rng.choice(usable)
        if kind == "skip_login":
            left = [i for i in t.logins if i not in dropped]
            if not left:
                continue
            pos = rng.choice(left)
            dropped.add(pos)
            ev = scn.timeline[pos]
            assert isinstance(ev, Login)  # t.logins holds the timeline positions of logins
            items.append(Item(kind, f"{{at: {format_offset(ev.at)}, login: {flow(ev.user)}}}", remove=pos))
        elif kind in EVENT_ITEM_KINDS:
            items.append(_event(rng, kind, t))
        else:
            items.append(_fault(rng, kind, t))
    return RunPlan(run, run_seed, tuple(items))


def build(base: Scenario, seed: int, items: Sequence[Item]) -> Scenario:
    """``base`` with ``items`` applied: what loading the file from :func:`edit_for` would give (locations aside)."""
    drop = {it.remove for it in items if it.remove is not None}
    kept = [e for i, e in enumerate(base.timeline) if i not in drop]
    added = [it.event for it in items if it.event is not None]
    timeline = tuple(replace(e, index=k) for k, e in enumerate([*kept, *added]))
    extra = [it.fault for it in items if it.fault is not None]
    faults = base.faults + tuple(replace(f, index=len(base.faults) + k) for k, f in enumerate(extra))
    return replace(base, seed=seed, timeline=timeline, faults=faults)


def edit_for(seed: int, items: Sequence[Item]) -> ScenarioEdit:
    """The text edit that writes ``items`` and ``seed`` into the base file (see :func:`build`)."""
    return ScenarioEdit(
        scalars=(("seed", seed),),
        lists=(
            ListEdit("faults", append=tuple(it.text for it in items if it.fault is not None)),
            ListEdit("timeline", remove=frozenset(it.remove for it in items if it.remove is not None),
                     append=tuple(it.text for it in items if it.event is not None)),
        ),
    )
