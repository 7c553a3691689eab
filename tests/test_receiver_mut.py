"""The receiving server's rules at their boundaries (net/receiver.py), for mutation testing.

The engine and sink tests reach the receiver only through whole runs, where a quota, a
greylist or a rate limit one second or one message off often ends the same way. These call
its stages directly, with the virtual time passed in, and compare whole replies and verdicts.
"""

from __future__ import annotations

import hashlib

import pytest

from simulator.domain.entities import MailboxDomain, RateLimit, SpfPolicy
from simulator.domain.faults import FAULT_SPECS, Fault, FaultSpec
from simulator.net.receiver import (
    DATA_GO,
    DROPPED,
    GREYLISTED,
    OK_GREETING,
    OK_RCPT,
    OK_SENDER,
    OUTAGE,
    PERMFAIL,
    QUOTA,
    RATE_LIMITED,
    SPF_DEFER,
    SPF_REJECT,
    TEMPFAIL,
    TOO_BIG,
    UNKNOWN_USER,
    DataVerdict,
    Mailbox,
    MailStore,
    ReceivingServer,
    Reply,
    Transaction,
)

IP = "198.51.100.10"


def spf_pass(now: int, ip: str, mail_from: str, helo: str) -> tuple[str, str]:
    return "pass", f"{ip} is allowed for {mail_from} at {now}"


def server(*boxes: MailboxDomain, faults: tuple[Fault, ...] = (), spf: object = spf_pass) -> ReceivingServer:
    return ReceivingServer(boxes, faults, seed=3, spf=spf, hostname="mx.client.example")  # type: ignore[arg-type]


# -- replies ------------------------------------------------------------------------------------------


def test_reply_classes_at_their_bounds() -> None:
    codes = (0, 199, 200, 399, 400, 499, 500)
    assert [Reply(c, "", "").ok for c in codes] == [False, False, True, True, False, False, False]
    assert [Reply(c, "", "").transient for c in codes] == [True, False, False, False, True, True, False]
    assert [Reply(c, "", "").permanent for c in codes] == [False, False, False, False, False, False, True]
    assert OK_GREETING.line() == "220 mailsim ESMTP ready"
    assert QUOTA.line() == "452 4.2.2 Mailbox full, try again later"
    assert DROPPED.line() == "(connection dropped)"
    assert (
        Reply(421, "4.3.2", "Service not available, closing transmission channel"),
        Reply(451, "4.3.0", "Requested action aborted: local error in processing"),
        Reply(550, "5.3.0", "Requested action not taken: mail system failure")) == (OUTAGE, TEMPFAIL, PERMFAIL)


def test_the_store_files_each_folder_once_per_address_any_case() -> None:
    store = MailStore()
    store.file("Jane@Client.example", "inbox", "<1@x>", 5)
    store.file("jane@client.example", "junk", "<2@x>", 6)
    store.file("JANE@client.example", "bounce", "<3@x>", 7)
    store.file("jane@client.example", "inbox", "<4@x>", 8)
    assert store.boxes == {"jane@client.example": Mailbox(2, 1, 1, [("<1@x>", "inbox", 5), ("<2@x>", "junk", 6),
                                                                    ("<3@x>", "bounce", 7), ("<4@x>", "inbox", 8)])}
    assert store.box("jane@client.example").stored == 3


def test_copies_filed_as_runs_read_back_in_filing_order_and_stay_as_filed() -> None:
    """A mailbox keeps runs and makes the per-copy tuples when read; the caller's list may change afterwards."""
    server = ReceivingServer((), (), 1, lambda _n, _i, _m, _h: ("pass", ""), MailStore())
    store = server.store
    ids = ["<a@x>", "<b@x>"]
    server.file_copies(["Jane@client.example", "bob@client.example"], "inbox", ids, 5)
    ids[:] = ["<changed@x>"]  # an MTA reuses its list: what was filed does not change
    store.file("jane@client.example", "bounce", "<dsn@x>", 6)
    server.file_copies(["jane@client.example"], "junk", ("<c@x>",), 7)
    jane = store.box("jane@client.example")
    assert (jane.inbox, jane.junk, jane.bounces, jane.stored) == (2, 1, 1, 3)
    want = [("<a@x>", "inbox", 5), ("<b@x>", "inbox", 5), ("<dsn@x>", "bounce", 6), ("<c@x>", "junk", 7)]
    assert jane.messages == want
    assert jane == Mailbox(2, 1, 1, want) and jane != Mailbox(2, 1, 1, want[:3]) and jane != object()
    assert "messages=[('<a@x>', 'inbox', 5)" in repr(jane)
    # the list read is the mailbox's own: a change to it (the sink's undo) is the mailbox's, and later copies follow it
    del jane.messages[0]
    server.file_copies(["jane@client.example"], "inbox", ["<d@x>"], 8)
    assert jane.messages == [*want[1:], ("<d@x>", "inbox", 8)]
    assert store.box("bob@client.example").messages == [("<a@x>", "inbox", 5), ("<b@x>", "inbox", 5)]
    with pytest.raises(TypeError):
        hash(jane)


# -- stages -------------------------------------------------------------------------------------------


def test_a_size_limit_refuses_one_octet_over_at_mail_from() -> None:
    s = server(MailboxDomain("client.example", size_limit=1000), MailboxDomain("free.example", size_limit=0))
    tx = Transaction(0, IP, "Client.Example")
    tx.rcpts.append("stale@client.example")
    assert [s.mail(tx, "a@acme.example", n) for n in (None, 999, 1000, 1001)] == [OK_SENDER, OK_SENDER, OK_SENDER,
                                                                                     TOO_BIG]
    assert (tx.mail_from, tx.rcpts) == ("a@acme.example", [])
    assert s.mail(Transaction(0, IP, "free.example"), "a@acme.example", 10**9) == OK_SENDER  # 0: no limit
    assert s.mail(Transaction(0, IP, None), "a@acme.example", 10 * 1024 * 1024 + 1) == TOO_BIG  # the default


def test_a_rate_limit_counts_accepted_messages_in_a_sliding_window() -> None:
    s = server(MailboxDomain("client.example", rate_limit=RateLimit(messages=2, per=60)))
    assert s.rate_limited("client.example", IP, 0) is None
    s.count_accepted("client.example", IP, 0)
    assert s.rate_limited("client.example", IP, 1) is None  # one of two
    s.count_accepted("Client.Example", IP, 10)
    assert [s.rate_limited("CLIENT.example", IP, t) for t in (10, 59)] == [RATE_LIMITED, RATE_LIMITED]
    assert s.rate_limited("client.example", "198.51.100.11", 59) is None  # per sending IP
    assert s.rate_limited("client.example", IP, 60) is None  # the first fell out of [t-60, t]: per seconds
    assert s.rate_limited("client.example", IP, 69) is None
    s.count_accepted("client.example", IP, 69)
    assert s.rate_limited("client.example", IP, 69) == RATE_LIMITED
    assert s.rate_limited("client.example", IP, 70) is None
    tx = Transaction(70, IP, "client.example")
    s.count_accepted("client.example", IP, 70)
    assert s.mail(tx, "a@acme.example") == RATE_LIMITED


def test_no_rate_limit_keeps_no_count() -> None:
    s = server(MailboxDomain("client.example"))
    for t in range(5):
        s.count_accepted("client.example", IP, t)
    assert s.rate_limited("client.example", IP, 5) is None
    assert s._accepted == {}


def test_unknown_users_and_any_user() -> None:
    s = server(MailboxDomain("client.example", users=("jane", "bob")))
    pol = s.policy("client.example")
    assert s.rcpt_known("Jane@Client.Example") == (pol, None)
    assert s.rcpt_known("ann@client.example") == (pol, UNKNOWN_USER)
    assert s.rcpt_known("ann@other.example") == (MailboxDomain(domain="*"), None)
    tx = Transaction(0, IP, "client.example")
    assert (s.rcpt(tx, "ann@client.example"), s.rcpt(tx, "Jane@client.example"), tx.rcpts) == (
        UNKNOWN_USER, OK_RCPT, ["Jane@client.example"])


def test_a_quota_refuses_the_message_that_would_go_over() -> None:
    s = server(MailboxDomain("client.example", quota=2))
    pol = s.policy("client.example")
    got = []
    for i in range(3):
        got.append(s.rcpt_counters(pol, IP, "a@acme.example", "Jane@client.example", i))
        s.store.file("jane@client.example", "junk" if i else "inbox", f"<{i}@x>", i)
    assert got == [None, None, QUOTA]
    assert s.rcpt_counters(pol, IP, "a@acme.example", "bob@client.example", 3) is None  # per mailbox


def test_greylisting_defers_a_triplet_for_exactly_its_period() -> None:
    s = server(MailboxDomain("client.example", greylist=300))
    pol = s.policy("client.example")

    def at(t: int, mail_from: str = "A@acme.example", rcpt: str = "jane@client.example", ip: str = IP) -> Reply | None:
        return s.rcpt_counters(pol, ip, mail_from, rcpt, t)

    assert [at(100), at(399), at(400), at(10**6)] == [GREYLISTED, GREYLISTED, None, None]
    assert at(400, "a@ACME.example", "JANE@client.example") is None  # the triplet compares case-insensitively
    assert at(400, rcpt="bob@client.example") == GREYLISTED  # a new triplet starts its own period
    assert at(400, ip="198.51.100.11") == GREYLISTED
    assert s._greylist == {(IP, "a@acme.example", "jane@client.example"): 100,
                           (IP, "a@acme.example", "bob@client.example"): 400,
                           ("198.51.100.11", "a@acme.example", "jane@client.example"): 400}


def test_quota_is_checked_before_greylisting() -> None:
    s = server(MailboxDomain("client.example", quota=1, greylist=60))
    s.store.file("jane@client.example", "inbox", "<0@x>", 0)
    pol = s.policy("client.example")
    assert s.rcpt_counters(pol, IP, "a@acme.example", "jane@client.example", 0) == QUOTA
    assert s._greylist == {}  # a refused RCPT never starts a greylist period


# -- end of DATA ------------------------------------------------------------------------------------------


def transaction(s: ReceivingServer, now: int = 50, domain: str | None = "client.example",
                rcpts: tuple[str, ...] = ("Jane@client.example", "bob@client.example")) -> Transaction:
    tx = Transaction(now, IP, domain, message_id="<INV-1@mailsim.invalid>", attempt=2)
    assert s.connect(tx) == OK_GREETING
    assert s.helo(tx, "out.platform.example") == Reply(250, "", "mx.client.example")
    assert s.mail(tx, "ar@acme.example") == OK_SENDER
    for r in rcpts:
        assert s.rcpt(tx, r) == OK_RCPT
    assert s.data_start(tx) == DATA_GO
    return tx


HEADER = ('pass (mx.client.example: 198.51.100.10 is allowed for ar@acme.example at 50) client-ip=198.51.100.10;'
          ' envelope-from="ar@acme.example"; helo=out.platform.example;')


def test_data_end_files_every_recipient_and_counts_the_message() -> None:
    s = server(MailboxDomain("client.example", rate_limit=RateLimit(1, 3600)))
    tx = transaction(s)
    assert s.data_end(tx) == DataVerdict(Reply(250, "2.0.0", "OK queued as <INV-1@mailsim.invalid>"), "inbox",
                                         "pass", "198.51.100.10 is allowed for ar@acme.example at 50", HEADER)
    assert {a: (b.inbox, b.junk, b.messages) for a, b in s.store.boxes.items()} == {
        "jane@client.example": (1, 0, [("<INV-1@mailsim.invalid>", "inbox", 50)]),
        "bob@client.example": (1, 0, [("<INV-1@mailsim.invalid>", "inbox", 50)])}
    assert s.rate_limited("client.example", IP, 51) == RATE_LIMITED


@pytest.mark.parametrize(("result", "reply", "folder"), [
    ("fail", SPF_REJECT, None), ("temperror", SPF_DEFER, None), ("softfail", None, "junk"),
    ("permerror", None, "junk"), ("neutral", None, "inbox"), ("none", None, "inbox"),
])
def test_the_spf_policy_of_the_first_recipients_domain_decides(result: str, reply: Reply | None,
                                                               folder: str | None) -> None:
    s = server(MailboxDomain("client.example"), MailboxDomain("other.example", spf_policy=SpfPolicy(fail="junk")),
               spf=lambda now, ip, mf, helo: (result, "why"))
    tx = transaction(s, domain="other.example")  # the connection's domain is not the first recipient's
    v = s.data_end(tx)
    accepted = Reply(250, "2.0.0", "OK queued as <INV-1@mailsim.invalid>")
    assert (v.reply, v.folder) == (reply or accepted, folder)
    assert sum(b.stored for b in s.store.boxes.values()) == (0 if folder is None else 2)
    assert s.spf_action(None, "other.example", "fail") == (None, "junk")  # no recipient: the connection's domain
    assert s.spf_action("x@Client.example", "other.example", "fail") == (SPF_REJECT, "")


def test_a_slow_fault_delays_the_reply_and_leaves_the_filing_to_the_caller() -> None:
    slow = Fault(0, "slow", delay=30)
    late = Fault(1, "slow", delay=7, stage="rcpt")
    s = server(MailboxDomain("client.example"), faults=(slow, late))
    tx = transaction(s, rcpts=("jane@client.example",))
    assert tx.delay == 7
    v = s.data_end(tx)
    assert (v.reply.code, v.folder, tx.delay, s.store.boxes) == (250, "inbox", 37, {})
    s.file_copies(["Jane@client.example"], "junk", ["<a@x>", "<b@x>"], 87)
    assert s.store.boxes == {"jane@client.example": Mailbox(0, 2, 0, [("<a@x>", "junk", 87), ("<b@x>", "junk", 87)])}


def test_a_data_fault_refuses_and_stores_nothing() -> None:
    s = server(MailboxDomain("client.example"), faults=(Fault(0, "disconnect", at=40, for_=20),))
    v = s.data_end(transaction(s))
    assert v == DataVerdict(DROPPED, None, "pass", "198.51.100.10 is allowed for ar@acme.example at 50", HEADER)
    assert s.store.boxes == {}
    assert s.data_end(transaction(s, now=60)).reply.code == 250  # the window is over


# -- plans: what may be shared across an envelope ------------------------------------------------------


def test_what_makes_a_domain_unshareable() -> None:
    half = Fault(2, "tempfail", probability=0.5, target="risky.example")
    s = server(MailboxDomain("client.example"), MailboxDomain("full.example", quota=5),
               MailboxDomain("busy.example", rate_limit=RateLimit(10, 60)),
               faults=(Fault(5, "outage", target="client.example", at=100), half,
                       Fault(1, "dns_timeout", target="client.example")))
    assert [f.index for f in s.faults] == [5, 2]  # DNS faults are not the receiver's
    assert [s.shareable(d, 0) for d in ("client.example", "full.example", "busy.example", "risky.example")] == [
        True, False, False, False]
    plan = s.plan("client.example", 100)
    assert (plan.stages, plan.shareable, plan.faults) == ({"connect": (s.faults[0],)}, True, (5,))
    assert s.plan("client.example", 0).faults == ()
    assert s.plan("risky.example", 0).faults == (2,)


# -- what the first receiver run left alive (docs/testing.md) -------------------------------------------


def test_every_folder_counts_each_copy() -> None:
    s = server(MailboxDomain("client.example"))
    for i in range(2):
        s.store.file("a@client.example", "junk", f"<j{i}@x>", i)
        s.store.file("a@client.example", "bounce", f"<b{i}@x>", i)
    s.file_copies(["b@client.example"], "junk", ["<1@x>"], 5)
    s.file_copies(["b@client.example"], "junk", ["<2@x>", "<3@x>"], 6)
    s.file_copies(["b@client.example"], "inbox", ["<4@x>"], 7)
    assert [(a, b.inbox, b.junk, b.bounces) for a, b in s.store.boxes.items()] == [
        ("a@client.example", 0, 2, 2), ("b@client.example", 1, 3, 0)]


def reference_draw(seed: int, index: int, message: str, rcpt: str, attempt: int, stage: str) -> float:
    h = hashlib.blake2b(f"{seed}|{index}|{message}|{rcpt}|{attempt}|{stage}".encode(), digest_size=8)
    return int.from_bytes(h.digest(), "big") / 2.0**64


@pytest.mark.parametrize("stage", ["connect", "helo", "mail", "rcpt", "data"])
def test_a_probabilistic_fault_fires_by_the_draw_of_its_whole_key_at_each_stage(stage: str) -> None:
    f = Fault(4, "tempfail", stage=stage, probability=0.5, target="client.example")
    keys = [(m, r, a) for m in ("<A@x>", "<B@x>", "<C@x>") for r in ("Jane@Client.example", "bob@client.example")
            for a in (1, 2)]
    got = []
    for m, r, a in keys:
        s = server(MailboxDomain("client.example"), faults=(f,))
        tx = Transaction(0, IP, "client.example", message_id=m, attempt=a)
        replies = [s.connect(tx), s.helo(tx, "h.example"), s.mail(tx, "a@acme.example"), s.rcpt(tx, r),
                   s.data_end(tx).reply]
        got.append(TEMPFAIL in replies)
        assert replies.count(TEMPFAIL) <= 1 and (stage == "data" or TEMPFAIL not in replies[4:])
    # the recipient is part of the key at RCPT only (lower-cased); the other stages draw with ""
    want = [reference_draw(3, 4, m, r.lower() if stage == "rcpt" else "", a, stage) < 0.5 for m, r, a in keys]
    assert got == want
    assert 0 < sum(want) < len(keys)  # both outcomes occur, so a lost key part changes the list


def test_a_fault_fires_only_for_its_target_domain() -> None:
    s = server(MailboxDomain("client.example"), faults=(Fault(0, "outage", target="client.example"),))
    assert s.connect(Transaction(0, IP, "mx.Client.example")) == OUTAGE
    assert s.connect(Transaction(0, IP, "other.example")) == OK_GREETING
    assert s.connect(Transaction(0, IP, None)) == OK_GREETING


def test_the_default_hostname_greets() -> None:
    s = ReceivingServer((), (), seed=0, spf=spf_pass)
    assert s.helo(Transaction(0, IP, None), "h.example") == Reply(250, "", "mx.mailsim.test")
    assert (s.hostname, s.seed) == ("mx.mailsim.test", 0)


def test_a_fault_kind_without_a_behaviour_here_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(FAULT_SPECS, "flood", FaultSpec("flood", "smtp", "data", "dns", dns_answer="timeout"))
    monkeypatch.setitem(FAULT_SPECS, "bounce", FaultSpec("bounce", "smtp", "rcpt", "reply", (550, "5.0.0", "no")))
    for kind in ("flood", "bounce"):
        with pytest.raises(ValueError) as e:
            server(faults=(Fault(0, kind),))
        assert str(e.value) == f"the receiver has no behaviour for fault kind '{kind}'"
    known = (Fault(0, "slow"), Fault(1, "disconnect"))
    assert server(faults=known).faults == known


def test_rcpt_checks_the_policy_with_its_own_transaction() -> None:
    s = server(MailboxDomain("client.example", greylist=300))
    first = Transaction(100, IP, "client.example")
    first.mail_from = "A@acme.example"
    assert s.rcpt(first, "Jane@client.example") == GREYLISTED
    again = Transaction(400, IP, "client.example")
    again.mail_from = "a@acme.example"
    assert (s.rcpt(again, "jane@client.example"), again.rcpts) == (OK_RCPT, ["jane@client.example"])
    assert s._greylist == {(IP, "a@acme.example", "jane@client.example"): 100}
    assert s.rcpt_policy(IP, "a@acme.example", "jane@client.example", 399) == GREYLISTED


def test_an_at_sign_in_the_local_part_leaves_the_domain_after_the_last_one() -> None:
    s = server(MailboxDomain("client.example", users=("jane",), spf_policy=SpfPolicy(fail="junk")))
    pol = s.policy("client.example")
    assert s.rcpt_known('"jane@x"@client.example') == (pol, UNKNOWN_USER)
    assert s.spf_action('"x@y"@client.example', None, "fail") == (None, "junk")


def test_a_stale_user_set_under_a_reused_id_is_not_trusted() -> None:
    users = ("jane",)
    s = server(MailboxDomain("client.example", users=users))
    s._user_sets[id(users)] = (("bob",), frozenset({"bob"}))  # what an id reused by another tuple would leave
    assert s.rcpt_known("jane@client.example")[1] is None
    assert s._user_sets[id(users)] == (users, frozenset(users))


def test_whole_verdicts_when_spf_refuses() -> None:
    def spf(now: int, ip: str, mail_from: str, helo: str) -> tuple[str, str]:
        return "fail", f"{ip} not allowed for {mail_from} from {helo}"

    s = server(MailboxDomain("client.example"), MailboxDomain("lax.example", spf_policy=SpfPolicy(fail="junk")),
               spf=spf)
    tx = transaction(s)
    header = ('fail (mx.client.example: 198.51.100.10 not allowed for ar@acme.example from out.platform.example)'
              ' client-ip=198.51.100.10; envelope-from="ar@acme.example"; helo=out.platform.example;')
    assert s.data_end(tx) == DataVerdict(SPF_REJECT, None, "fail",
                                         "198.51.100.10 not allowed for ar@acme.example from out.platform.example",
                                         header)
    lax = transaction(s, domain="lax.example", rcpts=())  # no recipient accepted: the connection's domain decides
    assert s.data_end(lax).folder == "junk"
    assert s.data_end(transaction(s, rcpts=("x@lax.example",))).folder == "junk"  # the first recipient's domain
    assert s.spf_action(None, "client.example", "temperror") == (SPF_DEFER, "")
    assert s.spf_action(None, "client.example", "fail") == (SPF_REJECT, "")
