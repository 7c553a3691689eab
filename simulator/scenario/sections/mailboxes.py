"""``mailboxes:`` — the recipients' mail servers, one entry per domain, and their policies.

A new policy is one row in MAILBOX_TABLE (its kind, default and description) and one argument
where the MailboxDomain is built; the JSON Schema follows from the row.
"""

from __future__ import annotations

from simulator.domain.entities import MailboxDomain, RateLimit, SpfPolicy
from simulator.domain.vocabulary import SPF_ACTIONS, SPF_RESULTS
from simulator.scenario import fields
from simulator.scenario.convert import Pos, Reader, describe, short
from simulator.scenario.fields import REQUIRED, Field, Kind, Table, list_schema
from simulator.scenario.kinds import COUNT, DNS_NAME, DURATION, POSITIVE_DURATION, choice, integer
from simulator.scenario.limits import MAX_ENTITIES, MAX_MAILBOX_DOMAINS
from simulator.scenario.times import END, SPACE_CLASS

_LOCAL_PART_PATTERN = f"^[^@{SPACE_CLASS}]+{END}"


def _local_parts(reader: Reader, value: object, pos: Pos, where: str) -> tuple[str, ...]:
    out = []
    items = reader.items(value, pos, where, "a list of user names (local parts, e.g. jane)", MAX_ENTITIES)
    quick = fields.QUICK_PATHS
    for i, v in enumerate(items):
        # plainly valid: a string of one word (no whitespace, so non-empty after strip) without '@'
        if quick and type(v) is str and "@" not in v and v.split() == [v]:
            out.append(v)
            continue
        p, w = reader.item_pos(items, i, pos), f"{where}[{i}]"
        s = reader.text(v, p, w)
        if "@" in s or any(c.isspace() for c in s):
            local = short(s.split("@")[0].strip(), 40) or "jane"
            reader.fail(
                p, f"{w}: expected a local part like {local!r} (the domain is the mailbox's), got {describe(s)}"
            )
        out.append(s)
    return tuple(out)


LOCAL_PARTS = Kind(
    _local_parts,
    list_schema({"type": "string", "pattern": _LOCAL_PART_PATTERN}, MAX_ENTITIES),
)

_SPF_ACTION = choice(SPF_ACTIONS, "action")
_DEFAULT_POLICY = SpfPolicy()
SPF_POLICY_TABLE = Table(
    tuple(
        Field(
            result,
            _SPF_ACTION,
            f"What the server does with a message whose SPF result is {result}.",
            _DEFAULT_POLICY.action(result),
        )
        for result in SPF_RESULTS
    ),
    "SPF result → action (inbox, junk, reject, defer); a partial map is merged over the default.",
)


def _spf_policy(reader: Reader, value: object, pos: Pos, where: str) -> SpfPolicy:
    entry = SPF_POLICY_TABLE.read(reader, value, pos, where, "a mapping of SPF result to action")
    actions = {result: entry[result] for result in SPF_RESULTS}
    return SpfPolicy(
        pass_=actions["pass"],
        fail=actions["fail"],
        softfail=actions["softfail"],
        neutral=actions["neutral"],
        none=actions["none"],
        permerror=actions["permerror"],
        temperror=actions["temperror"],
    )


def _show_policy(policy: SpfPolicy) -> dict[str, str]:
    return {result: policy.action(result) for result in SPF_RESULTS}


SPF_POLICY = Kind(_spf_policy, SPF_POLICY_TABLE.schema(), _show_policy)

RATE_LIMIT_TABLE = Table(
    (
        Field("messages", integer(1), "Messages one sending IP may have accepted within the window.", REQUIRED),
        Field("per", POSITIVE_DURATION, "The sliding window, e.g. 1h.", REQUIRED),
    ),
    "A throttle: once a sending IP has had `messages` accepted in the last `per`, MAIL FROM gets 421 4.7.28"
    " (deferred, retried).",
)


def _rate_limit(reader: Reader, value: object, pos: Pos, where: str) -> RateLimit:
    entry = RATE_LIMIT_TABLE.read(reader, value, pos, where, "a mapping {messages: N, per: DURATION}")
    return RateLimit(entry["messages"], entry["per"])


RATE_LIMIT = Kind(_rate_limit, RATE_LIMIT_TABLE.schema())

_DEFAULT = MailboxDomain("default.example")
MAILBOX_TABLE = Table(
    (
        Field("domain", DNS_NAME, "The recipient domain this server holds (unique among entries).", REQUIRED),
        Field(
            "users",
            LOCAL_PARTS,
            "Local parts (jane, not jane@…) that exist; others get 550 5.1.1. Unset: any user; []: nobody.",
        ),
        Field("spf_policy", SPF_POLICY, "What the server does per SPF result.", _DEFAULT.spf_policy),
        Field(
            "greylist",
            DURATION,
            "> 0: the first attempt per (ip, sender, rcpt) gets 451 4.7.1 until this long has passed.",
            _DEFAULT.greylist,
        ),
        Field("quota", COUNT, "> 0: messages per mailbox, then 452 4.2.2.", _DEFAULT.quota),
        Field("size_limit", integer(1), "Largest message accepted, in bytes.", _DEFAULT.size_limit),
        Field("rate_limit", RATE_LIMIT, "Unset: no throttle. {messages: N, per: DURATION}: 421 4.7.28 past N"
              " messages accepted from one sending IP in any window of that length."),
    ),
    "A recipient domain's mail server and its policies.",
)


def _mailboxes(reader: Reader, value: object, pos: Pos, where: str) -> tuple[MailboxDomain, ...]:
    out = []
    seen: dict[str, Pos] = {}
    for v, p, w in reader.seq(value, pos, where, "a list of mail domains", MAX_MAILBOX_DOMAINS):
        entry = MAILBOX_TABLE.read(reader, v, p, w)
        domain = entry["domain"]
        if domain in seen:
            reader.fail(
                entry.vpos("domain"),
                f"{entry.sub('domain')}: domain {domain!r} is listed twice (first at line {seen[domain].line})",
            )
        seen[domain] = entry.vpos("domain")
        out.append(
            MailboxDomain(
                domain=domain,
                users=entry["users"],
                spf_policy=entry["spf_policy"],
                greylist=entry["greylist"],
                quota=entry["quota"],
                size_limit=entry["size_limit"],
                rate_limit=entry["rate_limit"],
                loc=reader.loc(entry.pos),
            )
        )
    return tuple(out)


MAILBOXES = Kind(_mailboxes, list_schema(MAILBOX_TABLE.schema(), MAX_MAILBOX_DOMAINS))
