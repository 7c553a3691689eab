"""The per-server table of an envelope's fault draws (``transport.draws``).

Plans of different domains with the same candidate faults share one ``Parts`` per attempt
number; what it holds must be exactly the draws ``faults.draw`` makes, or a quiet message
would be told apart from a loud one differently than the receiver's own stages tell them.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.domain.entities import MailboxDomain
from simulator.domain.faults import Fault, draw
from simulator.net.receiver import MailStore, ReceivingServer
from simulator.transport.draws import Parts, parts

EVERYWHERE = Fault(0, "disconnect", probability=0.25, stage="data")
RISKY = Fault(1, "tempfail", probability=0.5, target="risky.example")
HELO = Fault(2, "tempfail", probability=0.1, stage="helo", target="slow.example")
DOMAINS = ("a.example", "b.example", "risky.example", "slow.example")


def server(seed: int = 7) -> ReceivingServer:
    boxes = [MailboxDomain(d) for d in DOMAINS]
    return ReceivingServer(boxes, (EVERYWHERE, RISKY, HELO), seed, lambda _n, _i, _m, _h: ("pass", ""), MailStore())


def test_plans_with_the_same_candidates_share_one_table_per_attempt() -> None:
    s = server()
    a, b, risky, slow = (s.plan(d, 0) for d in DOMAINS)
    assert a is not b and a.faults == b.faults == (0,)
    assert parts(s, a, 1) is parts(s, b, 1)  # made once, whichever domain asked first
    assert parts(s, a, 2) is not parts(s, a, 1)  # the attempt number is in every tail
    assert parts(s, risky, 1) is not parts(s, a, 1)
    assert parts(s, risky, 1).rcpt_faults == (RISKY,) and parts(s, a, 1).rcpt_faults is None
    assert [st for st, _fs in parts(s, slow, 1).early] == ["helo"]
    assert parts(server(), a, 1) is not parts(s, a, 1)  # another server (another run): its own table


def _fires(head: object, tail: str, below: bytes, mid: str) -> bool:
    h = head.copy()  # type: ignore[attr-defined]
    h.update((mid + tail).encode())
    return bool(h.digest() < below)


@settings(max_examples=200)
@given(st.integers(0, 2**32), st.integers(1, 9), st.text(min_size=1, max_size=40),
       st.sampled_from(DOMAINS), st.text(min_size=1, max_size=20))
def test_the_kept_draws_decide_as_faults_draw_does(seed: int, attempt: int, mid: str, domain: str,
                                                   rcpt: str) -> None:
    s = server(seed)
    p: Parts = parts(s, s.plan(domain, 0), attempt)
    stages = s.plan(domain, 0).stages
    expected = [(st, f) for st in ("connect", "helo", "mail") for f in stages.get(st, ())]
    expected += [("data", f) for f in stages.get("data", ())]
    assert len(p.draws) == len(expected)
    for (head, tail, below), (stage, f) in zip(p.draws, expected, strict=True):
        assert _fires(head, tail, below, mid) == (draw(seed, f.index, mid, "", attempt, stage) < f.probability)
    # RCPT draws name the recipient: the table keeps the head and threshold, the envelope adds the tail
    for (head, below), f in zip(p.rcpt_draws, stages.get("rcpt", ()), strict=True):
        tail = f"|{rcpt}|{attempt}|rcpt"
        assert _fires(head, tail, below, mid) == (draw(seed, f.index, mid, rcpt, attempt, "rcpt") < f.probability)
    assert not p.always and not p.rcpt_always and not p.rated
