"""SPF cases shared by the memory tests (test_spf.py) and the wire tests (test_spf_wire.py).

Each case is a small zone plus a connection (ip, MAIL FROM, HELO) and the
RFC 7208 result it must give. The wire tests replay every case through the
loopback DNS server and require the same result and explanation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from simulator.domain.dns import DnsRecord
from simulator.net.spf import SpfResult
from simulator.net.zone import Zone

Rec = tuple[str, str, str | tuple[str, ...]]


@dataclass(frozen=True)
class SpfCase:
    id: str
    records: tuple[Rec, ...]
    ip: str
    sender: str
    result: str
    helo: str = "mail.example.com"
    unreachable: tuple[str, ...] = ()
    mechanism: str | None = field(default=None)
    check_mechanism: bool = False  # when True, ``mechanism`` must equal the result's
    explanation_has: tuple[str, ...] = ()
    exp: str | None = None
    check_exp: bool = False
    lookups: int | None = None
    void_lookups: int | None = None
    now: int = 0

    def zone(self) -> Zone:
        return Zone([DnsRecord(name=n, type=t, value=v) for n, t, v in self.records], self.unreachable)


def assert_case(case: SpfCase, res: SpfResult) -> None:
    assert res.result == case.result, res
    if case.check_mechanism:
        assert res.mechanism == case.mechanism, res
    for fragment in case.explanation_has:
        assert fragment in res.explanation, res
    if case.check_exp:
        assert res.exp == case.exp, res
        if case.exp is None:
            assert "explanation:" not in res.explanation
    if case.lookups is not None:
        assert res.lookups == case.lookups, res
    if case.void_lookups is not None:
        assert res.void_lookups == case.void_lookups, res


def _c(
    id: str,
    records: list[Rec] | tuple[Rec, ...],
    ip: str,
    sender: str,
    result: str,
    **kw: object,
) -> SpfCase:
    return SpfCase(id, tuple(records), ip, sender, result, **kw)  # type: ignore[arg-type]


TXT = "TXT"
E = "example.com"
S = "user@example.com"
IP = "192.0.2.3"

# eleven hosts with A records that never match, for the lookup-limit cases
_HOSTS: list[Rec] = [(f"h{i}.example.com", "A", f"198.51.100.{i}") for i in range(1, 12)]

CASES: list[SpfCase] = [
    # --- record discovery and selection (§4.3–§4.5) -----------------------------------------
    _c("none-nxdomain", [], IP, "u@nowhere.example", "none", explanation_has=("no SPF record",)),
    _c("none-no-spf-txt", [(E, TXT, "google-site-verification=abc")], IP, S, "none"),
    _c(
        "none-single-label",
        [("localhost", TXT, "v=spf1 +all")],
        IP,
        "u@localhost",
        "none",
        explanation_has=("not a valid domain",),
    ),
    _c("none-empty-label", [], IP, "u@a..example.com", "none"),
    _c("none-numeric-tld", [], IP, "u@192.0.2.1", "none"),
    _c("none-spf1-needs-space", [(E, TXT, "v=spf1-all")], IP, S, "none"),
    _c("none-spf10-ignored", [(E, TXT, "v=spf10 -all")], IP, S, "none"),
    _c("none-spf-rrtype-only", [(E, "SPF", "v=spf1 -all")], IP, S, "none"),
    _c("version-case-insensitive", [(E, TXT, "V=SPF1 -all")], IP, S, "fail"),
    _c("empty-record-neutral", [(E, TXT, "v=spf1")], IP, S, "neutral", explanation_has=("no mechanism matched",)),
    _c("trailing-spaces-ok", [(E, TXT, "v=spf1 -all   ")], IP, S, "fail"),
    _c("multiple-spaces-ok", [(E, TXT, "v=spf1   ip4:192.0.2.3    -all")], IP, S, "pass"),
    _c(
        "multiple-records-permerror",
        [(E, TXT, "v=spf1 +all"), (E, TXT, "v=spf1 -all")],
        IP,
        S,
        "permerror",
        explanation_has=("2 SPF records",),
    ),
    _c("other-txt-beside-spf", [(E, TXT, "hello"), (E, TXT, "v=spf1 -all")], IP, S, "fail"),
    _c("multi-string-joined", [(E, TXT, ("v=spf1 ip4:192.0.2.3", " -all"))], IP, S, "pass"),
    _c("multi-string-no-separator", [(E, TXT, ("v=spf1 ip4:192.0.2.3", "-all"))], IP, S, "permerror"),
    _c(
        "long-string-split-and-joined",
        [(E, TXT, "v=spf1 " + " ".join(f"ip4:198.51.100.{i}" for i in range(1, 30)) + " ip4:192.0.2.3 -all")],
        IP,
        S,
        "pass",
    ),
    _c("spf-through-cname", [(E, "CNAME", "spf.example.net"), ("spf.example.net", TXT, "v=spf1 +all")], IP, S, "pass"),
    _c("trailing-dot-domain", [(E, TXT, "v=spf1 -all")], IP, "user@example.com.", "fail"),
    _c("uppercase-domain", [(E, TXT, "v=spf1 -all")], IP, "user@EXAMPLE.COM", "fail"),
    # --- qualifiers -------------------------------------------------------------------------
    _c("qualifier-plus", [(E, TXT, "v=spf1 +all")], IP, S, "pass", mechanism="+all", check_mechanism=True),
    _c("qualifier-default-plus", [(E, TXT, "v=spf1 all")], IP, S, "pass"),
    _c("qualifier-minus", [(E, TXT, "v=spf1 -all")], IP, S, "fail", mechanism="-all", check_mechanism=True),
    _c("qualifier-tilde", [(E, TXT, "v=spf1 ~all")], IP, S, "softfail"),
    _c("qualifier-question", [(E, TXT, "v=spf1 ?all")], IP, S, "neutral"),
    _c(
        "first-match-wins",
        [(E, TXT, "v=spf1 ?ip4:192.0.2.3 -all")],
        IP,
        S,
        "neutral",
        mechanism="?ip4:192.0.2.3",
        check_mechanism=True,
    ),
    _c("mechanism-name-case", [(E, TXT, "v=spf1 IP4:192.0.2.3 -ALL")], IP, S, "pass"),
    # --- ip4 / ip6 ---------------------------------------------------------------------------
    _c("ip4-exact", [(E, TXT, "v=spf1 ip4:192.0.2.3 -all")], IP, S, "pass", lookups=0),
    _c("ip4-cidr-match", [(E, TXT, "v=spf1 ip4:192.0.2.0/24 -all")], IP, S, "pass"),
    _c("ip4-cidr-nomatch", [(E, TXT, "v=spf1 ip4:192.0.3.0/24 -all")], IP, S, "fail"),
    _c("ip4-cidr-zero", [(E, TXT, "v=spf1 ip4:0.0.0.0/0 -all")], IP, S, "pass"),
    _c("ip4-host-bits-set", [(E, TXT, "v=spf1 ip4:192.0.2.200/25 -all")], IP, S, "fail"),
    _c("ip4-cidr-33", [(E, TXT, "v=spf1 ip4:192.0.2.3/33 -all")], IP, S, "permerror"),
    _c("ip4-leading-zero-cidr", [(E, TXT, "v=spf1 ip4:192.0.2.3/024 -all")], IP, S, "permerror"),
    _c("ip4-bad-octet", [(E, TXT, "v=spf1 ip4:192.0.2.300 -all")], IP, S, "permerror"),
    _c("ip4-leading-zero-octet", [(E, TXT, "v=spf1 ip4:192.0.2.03 -all")], IP, S, "permerror"),
    _c("ip4-missing-network", [(E, TXT, "v=spf1 ip4 -all")], IP, S, "permerror"),
    _c("ip4-with-ip6-cidr", [(E, TXT, "v=spf1 ip4:192.0.2.3//64 -all")], IP, S, "permerror"),
    _c("ip4-vs-ipv6-client", [(E, TXT, "v=spf1 ip4:0.0.0.0/0 -all")], "2001:db8::1", S, "fail"),
    _c("ip6-cidr-match", [(E, TXT, "v=spf1 ip6:2001:db8::/32 -all")], "2001:db8::cb01", S, "pass"),
    _c("ip6-exact", [(E, TXT, "v=spf1 ip6:2001:DB8::CB01 -all")], "2001:db8::cb01", S, "pass"),
    _c("ip6-nomatch", [(E, TXT, "v=spf1 ip6:2001:db9::/32 -all")], "2001:db8::cb01", S, "fail"),
    _c("ip6-vs-ipv4-client", [(E, TXT, "v=spf1 ip6:::/0 -all")], IP, S, "fail"),
    _c("ip6-cidr-129", [(E, TXT, "v=spf1 ip6:2001:db8::/129 -all")], IP, S, "permerror"),
    _c("ip6-bad-address", [(E, TXT, "v=spf1 ip6:2001:db8:::1 -all")], IP, S, "permerror"),
    _c("ipv4-mapped-client-is-ipv4", [(E, TXT, "v=spf1 ip4:192.0.2.3 -all")], "::ffff:192.0.2.3", S, "pass"),
    # --- a -----------------------------------------------------------------------------------
    _c("a-current-domain", [(E, TXT, "v=spf1 a -all"), (E, "A", IP)], IP, S, "pass", lookups=1),
    _c("a-other-domain", [(E, TXT, "v=spf1 a:mail.example.net -all"), ("mail.example.net", "A", IP)], IP, S, "pass"),
    _c("a-nomatch", [(E, TXT, "v=spf1 a -all"), (E, "A", "192.0.2.4")], IP, S, "fail"),
    _c("a-cidr", [(E, TXT, "v=spf1 a/24 -all"), (E, "A", "192.0.2.200")], IP, S, "pass"),
    _c(
        "a-domain-cidr",
        [(E, TXT, "v=spf1 a:h.example.com/30 -all"), ("h.example.com", "A", "192.0.2.1")],
        IP,
        S,
        "pass",
    ),
    _c("a-dual-cidr-v6", [(E, TXT, "v=spf1 a//64 -all"), (E, "AAAA", "2001:db8::1")], "2001:db8::cb01", S, "pass"),
    _c(
        "a-dual-cidr-both",
        [(E, TXT, "v=spf1 a:h.example.com/24//64 -all"), ("h.example.com", "AAAA", "2001:db8::1")],
        "2001:db8::cb01",
        S,
        "pass",
    ),
    _c(
        "a-ipv6-client-uses-aaaa",
        [(E, TXT, "v=spf1 a -all"), (E, "A", IP)],
        "2001:db8::cb01",
        S,
        "fail",
        void_lookups=1,
    ),
    _c(
        "a-through-cname",
        [
            (E, TXT, "v=spf1 a:alias.example.com -all"),
            ("alias.example.com", "CNAME", "real.example.com"),
            ("real.example.com", "A", IP),
        ],
        IP,
        S,
        "pass",
    ),
    _c("a-nxdomain-no-match", [(E, TXT, "v=spf1 a:missing.example.com ~all")], IP, S, "softfail", void_lookups=1),
    _c("a-empty-spec", [(E, TXT, "v=spf1 a: -all")], IP, S, "permerror"),
    _c("a-no-dot-in-spec", [(E, TXT, "v=spf1 a:localhost -all")], IP, S, "permerror"),
    _c("a-numeric-toplabel", [(E, TXT, "v=spf1 a:192.0.2.3 -all")], IP, S, "permerror"),
    _c("a-cidr-out-of-range", [(E, TXT, "v=spf1 a/33 -all")], IP, S, "permerror"),
    _c("a-cidr6-out-of-range", [(E, TXT, "v=spf1 a//129 -all")], IP, S, "permerror"),
    _c("a-unknown-suffix", [(E, TXT, "v=spf1 ab -all")], IP, S, "permerror"),
    _c(
        "a-trailing-dot-spec",
        [(E, TXT, "v=spf1 a:mail.example.net. -all"), ("mail.example.net", "A", IP)],
        IP,
        S,
        "pass",
    ),
    # --- mx ----------------------------------------------------------------------------------
    _c(
        "mx-match",
        [
            (E, TXT, "v=spf1 mx -all"),
            (E, "MX", "10 mx1.example.com"),
            (E, "MX", "20 mx2.example.com"),
            ("mx1.example.com", "A", "192.0.2.1"),
            ("mx2.example.com", "A", IP),
        ],
        IP,
        S,
        "pass",
        lookups=1,
    ),
    _c(
        "mx-nomatch",
        [(E, TXT, "v=spf1 mx -all"), (E, "MX", "10 mx1.example.com"), ("mx1.example.com", "A", "192.0.2.1")],
        IP,
        S,
        "fail",
    ),
    _c(
        "mx-cidr",
        [(E, TXT, "v=spf1 mx/24 -all"), (E, "MX", "10 mx1.example.com"), ("mx1.example.com", "A", "192.0.2.1")],
        IP,
        S,
        "pass",
    ),
    _c(
        "mx-other-domain",
        [
            (E, TXT, "v=spf1 mx:example.org -all"),
            ("example.org", "MX", "5 mx.example.org"),
            ("mx.example.org", "AAAA", "2001:db8::cb01"),
        ],
        "2001:db8::cb01",
        S,
        "pass",
    ),
    _c(
        "mx-ten-hosts-ok",
        [(E, TXT, "v=spf1 mx -all")]
        + [(E, "MX", f"{i} m{i}.example.com") for i in range(10)]
        + [(f"m{i}.example.com", "A", f"198.51.100.{i}") for i in range(9)]
        + [("m9.example.com", "A", IP)],
        IP,
        S,
        "pass",
    ),
    _c(
        "mx-eleven-hosts-permerror",
        [(E, TXT, "v=spf1 mx -all")]
        + [(E, "MX", f"{i} m{i}.example.com") for i in range(11)]
        + [(f"m{i}.example.com", "A", IP) for i in range(11)],
        IP,
        S,
        "permerror",
        explanation_has=("11 MX hosts",),
    ),
    _c("mx-null-mx", [(E, TXT, "v=spf1 mx -all"), (E, "MX", "0 .")], IP, S, "fail"),
    _c("mx-none-is-void", [(E, TXT, "v=spf1 mx ~all")], IP, S, "softfail", void_lookups=1),
    _c("mx-host-missing-no-match", [(E, TXT, "v=spf1 mx -all"), (E, "MX", "10 gone.example.com")], IP, S, "fail"),
    _c(
        "mx-host-timeout-temperror",
        [(E, TXT, "v=spf1 mx -all"), (E, "MX", "10 mx.slow.example")],
        IP,
        S,
        "temperror",
        unreachable=("slow.example",),
        explanation_has=("DNS timeout", "mx.slow.example"),
    ),
    # --- ptr ---------------------------------------------------------------------------------
    _c(
        "ptr-match",
        [
            (E, TXT, "v=spf1 ptr -all"),
            ("3.2.0.192.in-addr.arpa", "PTR", "mail.example.com"),
            ("mail.example.com", "A", IP),
        ],
        IP,
        S,
        "pass",
        lookups=1,
    ),
    _c(
        "ptr-domain-arg",
        [
            (E, TXT, "v=spf1 ptr:example.org -all"),
            ("3.2.0.192.in-addr.arpa", "PTR", "mx.example.org"),
            ("mx.example.org", "A", IP),
        ],
        IP,
        S,
        "pass",
    ),
    _c(
        "ptr-not-validated",
        [
            (E, TXT, "v=spf1 ptr -all"),
            ("3.2.0.192.in-addr.arpa", "PTR", "mail.example.com"),
            ("mail.example.com", "A", "192.0.2.99"),
        ],
        IP,
        S,
        "fail",
    ),
    _c(
        "ptr-wrong-domain",
        [
            (E, TXT, "v=spf1 ptr -all"),
            ("3.2.0.192.in-addr.arpa", "PTR", "mail.example.org"),
            ("mail.example.org", "A", IP),
        ],
        IP,
        S,
        "fail",
    ),
    _c(
        "ptr-label-boundary",
        [
            (E, TXT, "v=spf1 ptr -all"),
            ("3.2.0.192.in-addr.arpa", "PTR", "mailexample.com"),
            ("mailexample.com", "A", IP),
        ],
        IP,
        S,
        "fail",
    ),
    _c(
        "ptr-second-name",
        [
            (E, TXT, "v=spf1 ptr -all"),
            ("3.2.0.192.in-addr.arpa", "PTR", "other.example.net"),
            ("3.2.0.192.in-addr.arpa", "PTR", "mail.example.com"),
            ("mail.example.com", "A", IP),
        ],
        IP,
        S,
        "pass",
    ),
    _c(
        "ptr-only-first-ten",
        [(E, TXT, "v=spf1 ptr -all")]
        + [("3.2.0.192.in-addr.arpa", "PTR", f"n{i}.example.net") for i in range(10)]
        + [("3.2.0.192.in-addr.arpa", "PTR", "mail.example.com"), ("mail.example.com", "A", IP)],
        IP,
        S,
        "fail",
    ),
    _c(
        "ptr-tenth-name-used",  # the boundary itself: the 10th PTR name still counts
        [(E, TXT, "v=spf1 ptr -all")]
        + [("3.2.0.192.in-addr.arpa", "PTR", f"n{i}.example.net") for i in range(9)]
        + [("3.2.0.192.in-addr.arpa", "PTR", "mail.example.com"), ("mail.example.com", "A", IP)],
        IP,
        S,
        "pass",
    ),
    _c("ptr-dns-error-no-match", [(E, TXT, "v=spf1 ptr ~all")], IP, S, "softfail", unreachable=("in-addr.arpa",)),
    _c(
        "ptr-ipv6",
        [
            (E, TXT, "v=spf1 ptr -all"),
            ("1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", "PTR", "v6.example.com"),
            ("v6.example.com", "AAAA", "2001:db8::cb01"),
        ],
        "2001:db8::cb01",
        S,
        "pass",
    ),
    _c("ptr-missing-is-void", [(E, TXT, "v=spf1 ptr ?all")], IP, S, "neutral", void_lookups=1),
    # --- exists ------------------------------------------------------------------------------
    _c(
        "exists-match",
        [(E, TXT, "v=spf1 exists:%{i}.allow.example.com -all"), ("192.0.2.3.allow.example.com", "A", "127.0.0.2")],
        IP,
        S,
        "pass",
    ),
    _c("exists-nomatch", [(E, TXT, "v=spf1 exists:%{i}.allow.example.com -all")], IP, S, "fail", void_lookups=1),
    _c(
        "exists-uses-a-for-ipv6",
        [(E, TXT, "v=spf1 exists:ok.example.com -all"), ("ok.example.com", "A", "127.0.0.1")],
        "2001:db8::1",
        S,
        "pass",
    ),
    _c("exists-no-cidr", [(E, TXT, "v=spf1 exists:ok.example.com/24 -all")], IP, S, "permerror"),
    _c("exists-needs-domain", [(E, TXT, "v=spf1 exists -all")], IP, S, "permerror"),
    # --- include -----------------------------------------------------------------------------
    _c(
        "include-pass",
        [(E, TXT, "v=spf1 include:_spf.example.net -all"), ("_spf.example.net", TXT, "v=spf1 ip4:192.0.2.0/24 -all")],
        IP,
        S,
        "pass",
        mechanism="include:_spf.example.net",
        check_mechanism=True,
        explanation_has=("'ip4:192.0.2.0/24' in _spf.example.net",),
    ),
    _c(
        "include-fail-is-no-match",
        [(E, TXT, "v=spf1 include:_spf.example.net ~all"), ("_spf.example.net", TXT, "v=spf1 -all")],
        IP,
        S,
        "softfail",
    ),
    _c(
        "include-softfail-is-no-match",
        [(E, TXT, "v=spf1 include:_spf.example.net ?all"), ("_spf.example.net", TXT, "v=spf1 ~all")],
        IP,
        S,
        "neutral",
    ),
    _c(
        "include-neutral-is-no-match",
        [(E, TXT, "v=spf1 include:_spf.example.net -all"), ("_spf.example.net", TXT, "v=spf1 ?all")],
        IP,
        S,
        "fail",
    ),
    _c(
        "include-minus-qualifier",
        [(E, TXT, "v=spf1 -include:_spf.example.net +all"), ("_spf.example.net", TXT, "v=spf1 +all")],
        IP,
        S,
        "fail",
    ),
    _c(
        "include-none-permerror",
        [(E, TXT, "v=spf1 include:_spf.example.net -all"), ("_spf.example.net", TXT, "not spf")],
        IP,
        S,
        "permerror",
        mechanism="include:_spf.example.net",
        check_mechanism=True,
    ),
    _c("include-nxdomain-permerror", [(E, TXT, "v=spf1 include:missing.example.net -all")], IP, S, "permerror"),
    _c(
        "include-invalid-domain-permerror",
        [(E, TXT, "v=spf1 include:%{l}.example.com -all")],
        IP,
        "a..b@example.com",
        "permerror",
    ),
    _c(
        "include-temperror",
        [(E, TXT, "v=spf1 include:_spf.slow.example -all")],
        IP,
        S,
        "temperror",
        unreachable=("slow.example",),
    ),
    _c(
        "include-permerror-propagates",
        [(E, TXT, "v=spf1 include:_spf.example.net +all"), ("_spf.example.net", TXT, "v=spf1 bogus")],
        IP,
        S,
        "permerror",
    ),
    _c(
        "include-nested-pass",
        [
            (E, TXT, "v=spf1 include:a.example.net -all"),
            ("a.example.net", TXT, "v=spf1 include:b.example.net -all"),
            ("b.example.net", TXT, "v=spf1 ip4:192.0.2.3 -all"),
        ],
        IP,
        S,
        "pass",
        lookups=2,
    ),
    _c(
        "include-loop-permerror",
        [(E, TXT, "v=spf1 include:a.example.net -all"), ("a.example.net", TXT, "v=spf1 include:example.com -all")],
        IP,
        S,
        "permerror",
        explanation_has=("more than 10",),
    ),
    _c(
        "include-d-macro-is-target",
        [
            (E, TXT, "v=spf1 include:_spf.example.net -all"),
            ("_spf.example.net", TXT, "v=spf1 exists:%{d}.ok.example.com -all"),
            ("_spf.example.net.ok.example.com", "A", "127.0.0.2"),
        ],
        IP,
        S,
        "pass",
    ),
    _c(
        "include-exp-not-used",
        [
            (E, TXT, "v=spf1 include:_spf.example.net -all"),
            ("_spf.example.net", TXT, "v=spf1 -all exp=why.example.net"),
            ("why.example.net", TXT, "included explanation"),
        ],
        IP,
        S,
        "fail",
        exp=None,
        check_exp=True,
    ),
    # --- redirect ----------------------------------------------------------------------------
    _c(
        "redirect-pass",
        [(E, TXT, "v=spf1 redirect=_spf.example.net"), ("_spf.example.net", TXT, "v=spf1 ip4:192.0.2.3 -all")],
        IP,
        S,
        "pass",
        mechanism="ip4:192.0.2.3",
        check_mechanism=True,
        lookups=1,
    ),
    _c(
        "redirect-fail",
        [(E, TXT, "v=spf1 redirect=_spf.example.net"), ("_spf.example.net", TXT, "v=spf1 -all")],
        IP,
        S,
        "fail",
        explanation_has=("redirected from example.com",),
    ),
    _c(
        "redirect-after-no-match",
        [(E, TXT, "v=spf1 ip4:10.0.0.1 redirect=_spf.example.net"), ("_spf.example.net", TXT, "v=spf1 ~all")],
        IP,
        S,
        "softfail",
    ),
    _c("redirect-not-used-on-match", [(E, TXT, "v=spf1 ip4:192.0.2.3 redirect=_spf.example.net")], IP, S, "pass"),
    _c(
        "redirect-ignored-with-all",
        [(E, TXT, "v=spf1 ?all redirect=_spf.example.net"), ("_spf.example.net", TXT, "v=spf1 -all")],
        IP,
        S,
        "neutral",
        lookups=0,
    ),
    _c("redirect-to-none-permerror", [(E, TXT, "v=spf1 redirect=_spf.example.net")], IP, S, "permerror"),
    _c(
        "redirect-to-invalid-permerror",
        [(E, TXT, "v=spf1 redirect=%{l}.example.com")],
        IP,
        "x..y@example.com",
        "permerror",
    ),
    _c(
        "redirect-default-neutral",
        [(E, TXT, "v=spf1 redirect=_spf.example.net"), ("_spf.example.net", TXT, "v=spf1")],
        IP,
        S,
        "neutral",
    ),
    _c(
        "redirect-duplicate-permerror",
        [(E, TXT, "v=spf1 redirect=a.example.net redirect=b.example.net")],
        IP,
        S,
        "permerror",
    ),
    _c("redirect-with-qualifier-permerror", [(E, TXT, "v=spf1 -redirect=a.example.net")], IP, S, "permerror"),
    _c(
        "redirect-d-is-target",
        [
            (E, TXT, "v=spf1 redirect=_spf.example.net"),
            ("_spf.example.net", TXT, "v=spf1 a -all"),
            ("_spf.example.net", "A", IP),
        ],
        IP,
        S,
        "pass",
    ),
    _c(
        "redirect-temperror",
        [(E, TXT, "v=spf1 redirect=_spf.slow.example")],
        IP,
        S,
        "temperror",
        unreachable=("slow.example",),
    ),
    # --- exp -----------------------------------------------------------------------------
    _c(
        "exp-on-fail",
        [
            (E, TXT, "v=spf1 -all exp=explain.example.com"),
            ("explain.example.com", TXT, "%{i} is not one of %{d}'s designated mail servers."),
        ],
        IP,
        S,
        "fail",
        exp="192.0.2.3 is not one of example.com's designated mail servers.",
        check_exp=True,
        explanation_has=("explanation: 192.0.2.3 is not one of",),
    ),
    _c(
        "exp-not-on-softfail",
        [(E, TXT, "v=spf1 ~all exp=explain.example.com"), ("explain.example.com", TXT, "nope")],
        IP,
        S,
        "softfail",
        exp=None,
        check_exp=True,
    ),
    _c(
        "exp-missing-record", [(E, TXT, "v=spf1 -all exp=explain.example.com")], IP, S, "fail", exp=None, check_exp=True
    ),
    _c(
        "exp-two-records-ignored",
        [
            (E, TXT, "v=spf1 -all exp=explain.example.com"),
            ("explain.example.com", TXT, "one"),
            ("explain.example.com", TXT, "two"),
        ],
        IP,
        S,
        "fail",
        exp=None,
        check_exp=True,
    ),
    _c(
        "exp-bad-macro-ignored",
        [(E, TXT, "v=spf1 -all exp=explain.example.com"), ("explain.example.com", TXT, "bad %{x} macro")],
        IP,
        S,
        "fail",
        exp=None,
        check_exp=True,
    ),
    _c(
        "exp-timeout-ignored",
        [(E, TXT, "v=spf1 -all exp=explain.slow.example")],
        IP,
        S,
        "fail",
        exp=None,
        check_exp=True,
        unreachable=("slow.example",),
    ),
    _c(
        "exp-escapes-and-exp-letters",
        [
            (E, TXT, "v=spf1 -all exp=explain.example.com"),
            ("explain.example.com", TXT, ("%{c} via %{r} at %{t}: ", "100%%%_ok%-x")),
        ],
        IP,
        S,
        "fail",
        exp="192.0.2.3 via mx.mailsim.test at 1700000000: 100% ok%20x",
        check_exp=True,
        now=1700000000,
    ),
    _c(
        "exp-macro-target",
        [(E, TXT, "v=spf1 -all exp=%{l}.why.example.com"), ("user.why.example.com", TXT, "user %{l} may not send")],
        IP,
        S,
        "fail",
        exp="user user may not send",
        check_exp=True,
    ),
    _c(
        "exp-from-redirect-target",
        [
            (E, TXT, "v=spf1 exp=orig.example.com redirect=_spf.example.net"),
            ("orig.example.com", TXT, "original"),
            ("_spf.example.net", TXT, "v=spf1 -all exp=new.example.net"),
            ("new.example.net", TXT, "from %{d}"),
        ],
        IP,
        S,
        "fail",
        exp="from _spf.example.net",
        check_exp=True,
    ),
    _c(
        "exp-not-counted",
        [(E, TXT, "v=spf1 -all exp=explain.example.com"), ("explain.example.com", TXT, "x")],
        IP,
        S,
        "fail",
        lookups=0,
    ),
    _c("exp-duplicate-permerror", [(E, TXT, "v=spf1 -all exp=a.example.com exp=b.example.com")], IP, S, "permerror"),
    _c(
        "exp-p-macro",
        [
            (E, TXT, "v=spf1 -all exp=explain.example.com"),
            ("explain.example.com", TXT, "host %{p}"),
            ("3.2.0.192.in-addr.arpa", "PTR", "mx.example.org"),
            ("mx.example.org", "A", IP),
        ],
        IP,
        S,
        "fail",
        exp="host mx.example.org",
        check_exp=True,
    ),
    # --- macros in mechanisms (RFC 7208 §7.4 data) ------------------------------------------
    _c(
        "macro-ir-v-d2",
        [
            ("email.example.com", TXT, "v=spf1 exists:%{ir}.%{v}._spf.%{d2} -all"),
            ("3.2.0.192.in-addr._spf.example.com", "A", "127.0.0.2"),
        ],
        "192.0.2.3",
        "strong-bad@email.example.com",
        "pass",
    ),
    _c(
        "macro-lr-lp-d2",
        [
            ("email.example.com", TXT, "v=spf1 exists:%{lr-}.lp._spf.%{d2} -all"),
            ("bad.strong.lp._spf.example.com", "A", "127.0.0.2"),
        ],
        "192.0.2.3",
        "strong-bad@email.example.com",
        "pass",
    ),
    _c(
        "macro-lr-lp-ir",
        [
            ("email.example.com", TXT, "v=spf1 exists:%{lr-}.lp.%{ir}.%{v}._spf.%{d2} -all"),
            ("bad.strong.lp.3.2.0.192.in-addr._spf.example.com", "A", "127.0.0.2"),
        ],
        "192.0.2.3",
        "strong-bad@email.example.com",
        "pass",
    ),
    _c(
        "macro-ir-l1r",
        [
            ("email.example.com", TXT, "v=spf1 exists:%{ir}.%{v}.%{l1r-}.lp._spf.%{d2} -all"),
            ("3.2.0.192.in-addr.strong.lp._spf.example.com", "A", "127.0.0.2"),
        ],
        "192.0.2.3",
        "strong-bad@email.example.com",
        "pass",
    ),
    _c(
        "macro-d2-trusted",
        [
            ("email.example.com", TXT, "v=spf1 exists:%{d2}.trusted-domains.example.net -all"),
            ("example.com.trusted-domains.example.net", "A", "127.0.0.2"),
        ],
        "192.0.2.3",
        "strong-bad@email.example.com",
        "pass",
    ),
    _c(
        "macro-ipv6-ir",
        [
            ("email.example.com", TXT, "v=spf1 exists:%{ir}.%{v}._spf.%{d2} -all"),
            ("1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com", "A", "127.0.0.2"),
        ],
        "2001:db8::cb01",
        "strong-bad@email.example.com",
        "pass",
    ),
    _c(
        "macro-p-validated",
        [
            ("email.example.com", TXT, "v=spf1 exists:%{p}.ok.example.net -all"),
            ("3.2.0.192.in-addr.arpa", "PTR", "mx.example.org"),
            ("mx.example.org", "A", IP),
            ("mx.example.org.ok.example.net", "A", "127.0.0.2"),
        ],
        "192.0.2.3",
        "strong-bad@email.example.com",
        "pass",
    ),
    # %{p} looks at the first 10 PTR names only (§4.6.4, as ptr does): a validated name in
    # 10th place is used, in 11th place it is not (the value is then "unknown")
    _c(
        "macro-p-tenth-name-used",
        [
            ("email.example.com", TXT, "v=spf1 exists:%{p}.ok.example.net -all"),
            *[("3.2.0.192.in-addr.arpa", "PTR", f"n{i}.example.net") for i in range(9)],
            ("3.2.0.192.in-addr.arpa", "PTR", "mx.example.org"),
            ("mx.example.org", "A", IP),
            ("mx.example.org.ok.example.net", "A", "127.0.0.2"),
        ],
        "192.0.2.3",
        "strong-bad@email.example.com",
        "pass",
        lookups=1,
    ),
    _c(
        "macro-p-eleventh-name-ignored",
        [
            ("email.example.com", TXT, "v=spf1 exists:%{p}.ok.example.net -all"),
            *[("3.2.0.192.in-addr.arpa", "PTR", f"n{i}.example.net") for i in range(10)],
            ("3.2.0.192.in-addr.arpa", "PTR", "mx.example.org"),
            ("mx.example.org", "A", IP),
            ("mx.example.org.ok.example.net", "A", "127.0.0.2"),
        ],
        "192.0.2.3",
        "strong-bad@email.example.com",
        "fail",
        check_mechanism=True,
        mechanism="-all",
        void_lookups=1,
    ),
    _c(
        "macro-p-unknown",
        [
            ("email.example.com", TXT, "v=spf1 exists:%{p}.ok.example.net -all"),
            ("unknown.ok.example.net", "A", "127.0.0.2"),
        ],
        "192.0.2.3",
        "strong-bad@email.example.com",
        "pass",
    ),
    _c(
        "macro-url-escape",
        [(E, TXT, "v=spf1 exists:%{L}.esc.example.com -all"), ("user%2btag.esc.example.com", "A", "127.0.0.2")],
        IP,
        "user+tag@example.com",
        "pass",
    ),
    _c(
        "macro-h-and-o",
        [
            (E, TXT, "v=spf1 exists:%{h}.%{o}.ok.example.net -all"),
            ("mail.example.com.example.com.ok.example.net", "A", "127.0.0.2"),
        ],
        IP,
        S,
        "pass",
    ),
    _c(
        "macro-postmaster-local-part",
        [(E, TXT, "v=spf1 exists:%{l}.ok.example.net -all"), ("postmaster.ok.example.net", "A", "127.0.0.2")],
        IP,
        "@example.com",
        "pass",
    ),
    _c(
        "macro-no-local-part-bare-domain",
        [
            (E, TXT, "v=spf1 exists:%{s}.ok.example.net -all"),
            ("postmaster@example.com.ok.example.net", "A", "127.0.0.2"),
        ],
        IP,
        "example.com",
        "pass",
    ),
    _c("macro-c-in-domain-spec", [(E, TXT, "v=spf1 exists:%{c}.example.com -all")], IP, S, "permerror"),
    _c("macro-t-in-domain-spec", [(E, TXT, "v=spf1 exists:%{t}.example.com -all")], IP, S, "permerror"),
    _c("macro-unknown-letter", [(E, TXT, "v=spf1 exists:%{x}.example.com -all")], IP, S, "permerror"),
    _c("macro-zero-digit", [(E, TXT, "v=spf1 exists:%{d0}.example.com -all")], IP, S, "permerror"),
    _c("macro-bare-percent", [(E, TXT, "v=spf1 exists:%d.example.com -all")], IP, S, "permerror"),
    _c("macro-unterminated", [(E, TXT, "v=spf1 exists:%{d.example.com -all")], IP, S, "permerror"),
    _c("macro-bad-delimiter", [(E, TXT, "v=spf1 exists:%{d2!}.example.com -all")], IP, S, "permerror"),
    _c("macro-ends-domain-spec", [(E, TXT, "v=spf1 a:%{d} -all"), (E, "A", IP)], IP, S, "pass"),
    _c(
        "macro-long-name-truncated",
        [
            (E, TXT, "v=spf1 exists:%{l}.%{l}.%{l}.%{l}.%{l}.t.example.com -all"),
            (".".join(["x" * 60] * 3) + ".t.example.com", "A", "127.0.0.2"),
        ],
        IP,
        "x" * 60 + "@example.com",
        "pass",
    ),
    _c(
        "macro-label-too-long-no-match",
        [(E, TXT, "v=spf1 exists:%{l}.t.example.com ~all")],
        IP,
        "y" * 70 + "@example.com",
        "softfail",
    ),
    # --- syntax ------------------------------------------------------------------------------
    _c("unknown-mechanism", [(E, TXT, "v=spf1 foo -all")], IP, S, "permerror"),
    _c("syntax-error-after-match", [(E, TXT, "v=spf1 +all ip4:bogus")], IP, S, "permerror"),
    _c("unknown-modifier-ignored", [(E, TXT, "v=spf1 moo=cow.example.com -all")], IP, S, "fail"),
    _c("unknown-modifier-bad-macro", [(E, TXT, "v=spf1 moo=%{q} -all")], IP, S, "permerror"),
    _c("tab-in-record", [(E, TXT, "v=spf1 ip4:192.0.2.3\t-all")], IP, S, "permerror"),
    _c("non-ascii-in-record", [(E, TXT, "v=spf1 a:exämple.com -all")], IP, S, "permerror"),
    _c("all-with-argument", [(E, TXT, "v=spf1 all:foo.example.com")], IP, S, "permerror"),
    _c("include-no-colon", [(E, TXT, "v=spf1 include -all")], IP, S, "permerror"),
    _c("ptr-with-cidr", [(E, TXT, "v=spf1 ptr/24 -all")], IP, S, "permerror"),
    _c("double-qualifier", [(E, TXT, "v=spf1 +-all")], IP, S, "permerror"),
    # --- limits (§4.6.4) ---------------------------------------------------------------------
    _c(
        "ten-lookups-ok",
        [(E, TXT, "v=spf1 " + " ".join(f"a:h{i}.example.com" for i in range(1, 11)) + " -all"), *_HOSTS],
        IP,
        S,
        "fail",
        lookups=10,
        void_lookups=0,
    ),
    _c(
        "eleven-lookups-permerror",
        [(E, TXT, "v=spf1 " + " ".join(f"a:h{i}.example.com" for i in range(1, 12)) + " -all"), *_HOSTS],
        IP,
        S,
        "permerror",
        lookups=11,
        mechanism="a:h11.example.com",
        check_mechanism=True,
        explanation_has=("more than 10",),
    ),
    _c(
        "limit-counts-includes",
        [
            (E, TXT, "v=spf1 include:i1.example.net " + " ".join(f"a:h{i}.example.com" for i in range(1, 9)) + " -all"),
            ("i1.example.net", TXT, "v=spf1 a:h9.example.com a:h10.example.com ?all"),
            *_HOSTS,
        ],
        IP,
        S,
        "permerror",
    ),
    _c(
        "limit-includes-ten-ok",
        [
            (E, TXT, "v=spf1 include:i1.example.net " + " ".join(f"a:h{i}.example.com" for i in range(1, 8)) + " -all"),
            ("i1.example.net", TXT, "v=spf1 a:h9.example.com a:h10.example.com ?all"),
            *_HOSTS,
        ],
        IP,
        S,
        "fail",
        lookups=10,
    ),
    _c(
        "limit-ignores-ip-and-all",
        [(E, TXT, "v=spf1 " + " ".join(f"ip4:10.0.0.{i}" for i in range(30)) + " ip4:192.0.2.3 -all")],
        IP,
        S,
        "pass",
        lookups=0,
    ),
    _c(
        "limit-redirect-counts",
        [
            (E, TXT, "v=spf1 " + " ".join(f"a:h{i}.example.com" for i in range(1, 11)) + " redirect=r.example.net"),
            ("r.example.net", TXT, "v=spf1 +all"),
            *_HOSTS,
        ],
        IP,
        S,
        "permerror",
    ),
    _c("two-voids-ok", [(E, TXT, "v=spf1 a:nx1.example.com a:nx2.example.com -all")], IP, S, "fail", void_lookups=2),
    _c(
        "three-voids-permerror",
        [(E, TXT, "v=spf1 a:nx1.example.com a:nx2.example.com a:nx3.example.com -all")],
        IP,
        S,
        "permerror",
        void_lookups=3,
        explanation_has=("void",),
    ),
    _c(
        "voids-nodata-count",
        [(E, TXT, "v=spf1 a mx exists:nodata.example.com -all"), ("nodata.example.com", "MX", "10 x.example.com")],
        IP,
        S,
        "permerror",
    ),
    _c(
        "voids-across-include",
        [
            (E, TXT, "v=spf1 a:nx1.example.com include:i.example.net -all"),
            ("i.example.net", TXT, "v=spf1 a:nx2.example.com a:nx3.example.com ?all"),
        ],
        IP,
        S,
        "permerror",
    ),
    # --- temperror (unreachable / faults) ----------------------------------------------------
    _c(
        "temperror-record-timeout",
        [(E, TXT, "v=spf1 +all")],
        IP,
        S,
        "temperror",
        unreachable=(E,),
        explanation_has=("DNS timeout looking up TXT example.com",),
    ),
    _c(
        "temperror-a-timeout",
        [(E, TXT, "v=spf1 a:h.slow.example -all")],
        IP,
        S,
        "temperror",
        unreachable=("slow.example",),
        mechanism="a:h.slow.example",
        check_mechanism=True,
    ),
    _c(
        "temperror-exists-timeout",
        [(E, TXT, "v=spf1 exists:x.slow.example -all")],
        IP,
        S,
        "temperror",
        unreachable=("slow.example",),
    ),
    _c(
        "temperror-mx-timeout",
        [(E, TXT, "v=spf1 mx:slow.example -all")],
        IP,
        S,
        "temperror",
        unreachable=("slow.example",),
    ),
    _c(
        "temperror-after-match-not-reached",
        [(E, TXT, "v=spf1 ip4:192.0.2.3 a:h.slow.example -all")],
        IP,
        S,
        "pass",
        unreachable=("slow.example",),
    ),
    # --- CNAME loops -------------------------------------------------------------------------
    _c(
        "cname-loop-record",
        [(E, "CNAME", "loop.example.com"), ("loop.example.com", "CNAME", E)],
        IP,
        S,
        "permerror",
        explanation_has=("CNAME loop",),
    ),
    _c(
        "cname-self-loop-a",
        [(E, TXT, "v=spf1 a:self.example.com -all"), ("self.example.com", "CNAME", "self.example.com")],
        IP,
        S,
        "permerror",
    ),
    _c(
        "cname-loop-in-ptr-skipped",
        [
            (E, TXT, "v=spf1 ptr ~all"),
            ("3.2.0.192.in-addr.arpa", "PTR", "mail.example.com"),
            ("mail.example.com", "CNAME", "mail2.example.com"),
            ("mail2.example.com", "CNAME", "mail.example.com"),
        ],
        IP,
        S,
        "softfail",
    ),
    # --- MAIL FROM variants ------------------------------------------------------------------
    _c(
        "empty-mail-from-uses-helo",
        [("mail.example.com", TXT, "v=spf1 ip4:192.0.2.3 -all"), (E, TXT, "v=spf1 -all")],
        IP,
        "",
        "pass",
    ),
    _c(
        "null-path-uses-helo",
        [
            ("mail.example.com", TXT, "v=spf1 exists:%{l}.%{o}.ok.example.net -all"),
            ("postmaster.mail.example.com.ok.example.net", "A", "127.0.0.2"),
        ],
        IP,
        "<>",
        "pass",
    ),
    _c("wildcard-spf", [("*.example.com", TXT, "v=spf1 ip4:192.0.2.3 -all")], IP, "u@anything.example.com", "pass"),
]

CASE_IDS = [c.id for c in CASES]
assert len(set(CASE_IDS)) == len(CASE_IDS), "case ids must be unique"
