"""RFC 7208 check_host() over the in-memory resolver, macro expansion, and `mailsim spf check`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

try:
    from tests.spf_cases import CASES, SpfCase, assert_case
except ImportError:  # tests/ is not a package: pytest put it on sys.path
    from spf_cases import CASES, SpfCase, assert_case  # type: ignore[no-redef]

from simulator.cli.spf_cmd import app as spf_app
from simulator.domain.dns import DnsRecord, bytes_to_text
from simulator.domain.faults import Fault
from simulator.net.resolver import MemoryResolver
from simulator.net.spf import RESULTS, SpfResult, check_helo, check_host, check_mail_from, expand
from simulator.net.zone import Zone


def run_case(case: SpfCase, resolver: object) -> SpfResult:
    return check_mail_from(case.ip, case.sender, case.helo, resolver, now=case.now)  # type: ignore[arg-type]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case_memory(case: SpfCase) -> None:
    res = run_case(case, MemoryResolver(case.zone()))
    assert_case(case, res)
    assert res.result in RESULTS
    assert res.explanation


# --- RFC 7208 §7.4 macro examples, verbatim --------------------------------------------------

SENDER = "strong-bad@email.example.com"
MACROS_74 = [
    ("%{s}", "strong-bad@email.example.com"),
    ("%{o}", "email.example.com"),
    ("%{d}", "email.example.com"),
    ("%{d4}", "email.example.com"),
    ("%{d3}", "email.example.com"),
    ("%{d2}", "example.com"),
    ("%{d1}", "com"),
    ("%{dr}", "com.example.email"),
    ("%{d2r}", "example.email"),
    ("%{l}", "strong-bad"),
    ("%{l-}", "strong.bad"),
    ("%{lr}", "strong-bad"),
    ("%{lr-}", "bad.strong"),
    ("%{l1r-}", "strong"),
    ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
    ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
    ("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"),
    ("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"),
    ("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"),
]


@pytest.mark.parametrize(("macro", "expansion"), MACROS_74)
def test_rfc7208_74_ipv4_examples(macro: str, expansion: str) -> None:
    assert expand(macro, ip="192.0.2.3", sender=SENDER, domain="email.example.com") == expansion


def test_rfc7208_74_ipv6_example() -> None:
    got = expand("%{ir}.%{v}._spf.%{d2}", ip="2001:db8::cb01", sender=SENDER, domain="email.example.com")
    # the RFC's example, with the nibbles in the upper case the RFC 7208 test suite requires
    # (its v-macro-ip6 case); the name is the same to the DNS
    assert got == ("1.0.B.C.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.ip6._spf.example.com")


def test_macro_p_uses_validated_ptr_name() -> None:
    zone = Zone(
        [
            DnsRecord("3.2.0.192.in-addr.arpa", "PTR", "bogus.example.net"),
            DnsRecord("3.2.0.192.in-addr.arpa", "PTR", "mx.example.org"),
            DnsRecord("mx.example.org", "A", "192.0.2.3"),
        ]
    )
    r = MemoryResolver(zone)
    assert expand("%{p}", ip="192.0.2.3", sender=SENDER, domain="email.example.com", resolver=r) == "mx.example.org"
    # without a validated name: "unknown"
    assert expand("%{p}", ip="192.0.2.4", sender=SENDER, domain="email.example.com", resolver=r) == "unknown"


def test_macro_p_prefers_the_domain_itself_then_subdomains() -> None:
    zone = Zone(
        [
            DnsRecord("3.2.0.192.in-addr.arpa", "PTR", "a.other.example"),
            DnsRecord("3.2.0.192.in-addr.arpa", "PTR", "mx.example.com"),
            DnsRecord("3.2.0.192.in-addr.arpa", "PTR", "example.com"),
            DnsRecord("a.other.example", "A", "192.0.2.3"),
            DnsRecord("mx.example.com", "A", "192.0.2.3"),
            DnsRecord("example.com", "A", "192.0.2.3"),
        ]
    )
    r = MemoryResolver(zone)
    kw = {"ip": "192.0.2.3", "sender": "u@example.com", "resolver": r}
    assert expand("%{p}", domain="example.com", **kw) == "example.com"  # type: ignore[arg-type]
    assert expand("%{p}", domain="com", **kw) == "mx.example.com"  # type: ignore[arg-type]
    assert expand("%{p}", domain="example.org", **kw) == "a.other.example"  # type: ignore[arg-type]


def test_macro_escapes_and_exp_letters() -> None:
    kw = {"ip": "2001:db8::cb01", "sender": "a b/c@example.com", "domain": "example.com"}
    assert expand("%{L}", **kw) == "a%20b%2Fc"  # type: ignore[arg-type]
    assert expand("%{S}", **kw) == "a%20b%2Fc%40example.com"  # type: ignore[arg-type]
    assert expand("%%%_%-", **kw) == "% %20"  # type: ignore[arg-type]
    assert expand("%{c} %{r} %{t}", explain=True, receiver="mx.r.example", now=42, **kw) == (  # type: ignore[arg-type]
        "2001:db8::cb01 mx.r.example 42"
    )
    assert expand("%{v}", **kw) == "ip6"  # type: ignore[arg-type]
    assert expand("%{h}", helo="Mail.Example.com", **kw) == "Mail.Example.com"  # type: ignore[arg-type]
    assert expand("%{d9}", **kw) == "example.com"  # type: ignore[arg-type]
    assert expand("%{l+,}", ip="192.0.2.1", sender="a+b,c@x.example", domain="x.example") == "a.b.c"
    assert expand("%{lr+}", ip="192.0.2.1", sender="a++b@x.example", domain="x.example") == "b..a"
    for bad in ("%{c}", "%{t}", "%{r}", "%{x}", "%{d0}", "%x", "%", "%{d", "a b"):
        with pytest.raises(ValueError):
            expand(bad, **kw)  # type: ignore[arg-type]


def test_t_macro_uses_now_not_the_wall_clock() -> None:
    zone = Zone(
        [
            DnsRecord("example.com", "TXT", "v=spf1 -all exp=e.example.com"),
            DnsRecord("e.example.com", "TXT", "t=%{t}"),
        ]
    )
    r = MemoryResolver(zone)
    assert check_host("192.0.2.3", "example.com", "u@example.com", "h.example", r, now=12345).exp == "t=12345"
    assert check_host("192.0.2.3", "example.com", "u@example.com", "h.example", r).exp == "t=0"


# --- identities ------------------------------------------------------------------------------


def _zone(*recs: tuple[str, str, str]) -> MemoryResolver:
    return MemoryResolver(Zone([DnsRecord(n, t, v) for n, t, v in recs]))


def test_check_helo() -> None:
    r = _zone(("mail.example.com", "TXT", "v=spf1 a -all"), ("mail.example.com", "A", "192.0.2.3"))
    res = check_helo("192.0.2.3", "mail.example.com", r)
    assert (res.result, res.domain, res.mechanism) == ("pass", "mail.example.com", "a")
    assert check_helo("192.0.2.4", "mail.example.com", r).result == "fail"
    assert check_helo("192.0.2.3", "[192.0.2.3]", r).result == "none"
    assert check_helo("192.0.2.3", "192.0.2.3", r).result == "none"
    assert check_helo("192.0.2.3", "localhost", r).result == "none"


def test_mail_from_forms() -> None:
    r = _zone(
        ("example.com", "TXT", "v=spf1 exists:%{l}.ok.example.net -all"),
        ("postmaster.ok.example.net", "A", "127.0.0.2"),
        ("helo.example.org", "TXT", "v=spf1 ip4:192.0.2.3 -all"),
    )
    assert check_mail_from("192.0.2.3", "someone@example.com", "helo.example.org", r).result == "fail"
    assert check_mail_from("192.0.2.3", "<@example.com>", "helo.example.org", r).result == "pass"
    assert check_mail_from("192.0.2.3", "example.com", "helo.example.org", r).result == "pass"
    empty = check_mail_from("192.0.2.3", "", "helo.example.org", r)
    assert (empty.result, empty.domain) == ("pass", "helo.example.org")
    assert check_mail_from("192.0.2.9", "<>", "helo.example.org", r).result == "fail"


def test_invalid_ip_is_a_caller_error() -> None:
    with pytest.raises(ValueError):
        check_host("not-an-ip", "example.com", "u@example.com", "h", _zone())


def test_dns_faults_give_temperror() -> None:
    zone = Zone([DnsRecord("example.com", "TXT", "v=spf1 a -all"), DnsRecord("example.com", "A", "192.0.2.3")])
    servfail = (Fault(index=0, kind="dns_servfail", at=100, for_=50, target="example.com"),)
    assert (
        check_host(
            "192.0.2.3", "example.com", "u@example.com", "h", MemoryResolver(zone, now=99, faults=servfail)
        ).result
        == "pass"
    )
    res = check_host("192.0.2.3", "example.com", "u@example.com", "h", MemoryResolver(zone, now=120, faults=servfail))
    assert res.result == "temperror"
    assert "SERVFAIL looking up TXT example.com" in res.explanation
    clock = [0]
    live = MemoryResolver(zone, now=lambda: clock[0], faults=servfail)
    assert check_host("192.0.2.3", "example.com", "u@example.com", "h", live).result == "pass"
    clock[0] = 149
    assert check_host("192.0.2.3", "example.com", "u@example.com", "h", live).result == "temperror"


def test_zone_changes_change_the_result() -> None:
    zone = Zone([DnsRecord("acme.example", "TXT", "v=spf1 ip4:198.51.100.10 -all")])
    r = MemoryResolver(zone)
    assert check_host("198.51.100.10", "acme.example", "b@acme.example", "h", r).result == "pass"
    zone.set("acme.example", "TXT", "v=spf1 -all")
    assert check_host("198.51.100.10", "acme.example", "b@acme.example", "h", r).result == "fail"
    zone.delete("acme.example", "TXT")
    assert check_host("198.51.100.10", "acme.example", "b@acme.example", "h", r).result == "none"


def test_provider_include_auto_published() -> None:
    from simulator.domain.entities import DEFAULT_PROVIDERS

    zone = Zone(
        [DnsRecord("acme.example", "TXT", "v=spf1 include:spf.protection.outlook.com -all")],
        providers=DEFAULT_PROVIDERS,
    )
    res = check_host("203.0.113.20", "acme.example", "ar@acme.example", "h", MemoryResolver(zone))
    assert res.result == "pass"
    assert res.mechanism == "include:spf.protection.outlook.com"
    assert check_host("203.0.113.30", "acme.example", "ar@acme.example", "h", MemoryResolver(zone)).result == "fail"


def test_result_is_deterministic() -> None:
    case = next(c for c in CASES if c.id == "ptr-second-name")
    first = run_case(case, MemoryResolver(case.zone()))
    assert all(run_case(case, MemoryResolver(case.zone())) == first for _ in range(5))


# --- properties ------------------------------------------------------------------------------

_TERMS = st.sampled_from(
    [
        "all",
        "-all",
        "~all",
        "?all",
        "+all",
        "a",
        "a/24",
        "a//64",
        "a:h.example.com",
        "mx",
        "mx/8",
        "mx:m.example.com",
        "ptr",
        "ptr:example.com",
        "ip4:192.0.2.0/24",
        "ip6:2001:db8::/32",
        "exists:%{i}.e.example.com",
        "exists:%{ir}.%{v}.x.example.com",
        "include:i.example.com",
        "include:example.com",
        "redirect=r.example.com",
        "redirect=example.com",
        "exp=x.example.com",
        "moo=cow",
        "a:",
        "ip4:1.2.3",
        "%{",
        "include:%{l}.example.com",
        "exists:%{p}.example.com",
        "a:%{d}",
        "mx:%{o}.",
        "bogus",
        "ip4:192.0.2.3/33",
        "x=%{x}",
    ]
)
_RECORD = st.lists(_TERMS, max_size=12).map(lambda ts: " ".join(["v=spf1", *ts]))
_NAMES = st.sampled_from(
    [
        "example.com",
        "h.example.com",
        "m.example.com",
        "i.example.com",
        "r.example.com",
        "x.example.com",
        "3.2.0.192.in-addr.arpa",
        "*.e.example.com",
        "loop.example.com",
    ]
)
_RR = st.one_of(
    st.tuples(_NAMES, st.just("TXT"), _RECORD),
    st.tuples(_NAMES, st.just("TXT"), st.text(max_size=40).map(lambda t: bytes_to_text(t.encode()))),
    st.tuples(_NAMES, st.just("A"), st.sampled_from(["192.0.2.3", "192.0.2.99", "127.0.0.2"])),
    st.tuples(_NAMES, st.just("AAAA"), st.sampled_from(["2001:db8::cb01", "2001:db8::1"])),
    st.tuples(_NAMES, st.just("MX"), st.sampled_from(["10 h.example.com", "0 .", "5 m.example.com"])),
    st.tuples(_NAMES, st.just("CNAME"), _NAMES),
    st.tuples(_NAMES, st.just("PTR"), _NAMES),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    records=st.lists(_RR, max_size=10),
    unreachable=st.lists(_NAMES, max_size=2),
    ip=st.sampled_from(["192.0.2.3", "2001:db8::cb01", "::ffff:192.0.2.3", "10.0.0.1"]),
    sender=st.sampled_from(["u@example.com", "", "example.com", "@example.com", "a.b@h.example.com"]),
)
def test_random_zones_always_give_one_of_the_seven_results(
    records: list[tuple[str, str, str]], unreachable: list[str], ip: str, sender: str
) -> None:
    zone = Zone([DnsRecord(n.replace("*.", "w.") if t == "CNAME" else n, t, v) for n, t, v in records], unreachable)
    res = check_mail_from(ip, sender, "h.example.com", MemoryResolver(zone))
    assert res.result in RESULTS
    assert res.lookups <= 11
    assert res.void_lookups <= 3
    assert res.explanation
    if res.exp is not None:
        assert res.result == "fail"
    # same input, same answer
    assert check_mail_from(ip, sender, "h.example.com", MemoryResolver(zone)) == res


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_record_text_never_raises(text: str) -> None:
    # records hold the presentation form: escape the bytes as a zone file would
    zone = Zone([DnsRecord("example.com", "TXT", bytes_to_text(("v=spf1 " + text).encode()))])
    res = check_host("192.0.2.3", "example.com", "u@example.com", "h.example", MemoryResolver(zone))
    assert res.result in RESULTS


# --- CLI: mailsim spf check ------------------------------------------------------------------

SCENARIO = """\
schema: mailsim/1
name: spf-cli
start: 2026-11-02T09:00:00Z
platform: {sending_ips: [198.51.100.10], helo: out.platform.example}
dns:
  records:
    - {name: acme.example, type: TXT,
       value: "v=spf1 include:spf.protection.outlook.com ip4:198.51.100.10 -all exp=why.acme.example"}
    - {name: why.acme.example, type: TXT, value: "%{i} may not send for %{d}"}
    - {name: out.platform.example, type: TXT, value: "v=spf1 ip4:198.51.100.0/24 -all"}
    - {name: slow.acme.example, type: TXT, value: "v=spf1 +all"}
  unreachable: [slow.acme.example]
"""


def spf_cli(tmp_path: Path, *args: str, text: str = SCENARIO) -> Result:
    path = tmp_path / "scn.yaml"
    path.write_text(text)
    return CliRunner().invoke(spf_app, ["check", str(path), *args])


def test_cli_plain_output_and_exit_zero_for_every_result(tmp_path: Path) -> None:
    ok = spf_cli(tmp_path, "--ip", "198.51.100.10", "--sender", "billing@acme.example", "--helo", "h.example")
    assert ok.exit_code == 0
    assert ok.output == "pass: 198.51.100.10 matched 'ip4:198.51.100.10' in acme.example\n"
    bad = spf_cli(tmp_path, "--ip", "192.0.2.3", "--sender", "billing@acme.example", "--helo", "h.example")
    assert bad.exit_code == 0
    assert bad.output.startswith("fail: ")
    assert "explanation: 192.0.2.3 may not send for acme.example" in bad.output
    temp = spf_cli(tmp_path, "--ip", "192.0.2.3", "--sender", "x@slow.acme.example", "--helo", "h.example")
    assert temp.exit_code == 0
    assert temp.output.startswith("temperror: DNS timeout")


def test_cli_json_and_provider_include(tmp_path: Path) -> None:
    res = spf_cli(tmp_path, "--ip", "203.0.113.20", "--sender", "ar@acme.example", "--helo", "h.example", "--json")
    assert res.exit_code == 0
    doc = json.loads(res.output)
    assert doc["result"] == "pass"
    assert doc["mechanism"] == "include:spf.protection.outlook.com"
    assert "via 'ip4:203.0.113.20' in spf.protection.outlook.com" in doc["explanation"]
    assert doc["transport"] == "memory"
    assert {"result", "explanation", "domain", "lookups", "void_lookups"} <= set(doc)


def test_cli_empty_sender_and_helo_default_from_scenario(tmp_path: Path) -> None:
    res = spf_cli(tmp_path, "--ip", "198.51.100.77", "--sender", "", "--json")
    doc = json.loads(res.output)
    assert (doc["result"], doc["domain"], doc["helo"]) == ("pass", "out.platform.example", "out.platform.example")


def test_cli_bad_input_exits_2(tmp_path: Path) -> None:
    res = spf_cli(tmp_path, "--ip", "999.1.1.1", "--sender", "a@acme.example", "--helo", "h.example")
    assert res.exit_code == 2
    broken = "schema: mailsim/1\nname: x\nstart: 2026-11-02T09:00:00Z\ndns: {recordz: []}\n"
    res2 = spf_cli(tmp_path, "--ip", "192.0.2.1", "--sender", "a@b.example", text=broken)
    assert res2.exit_code == 2
    assert f"{tmp_path / 'scn.yaml'}:4:" in res2.output  # file:line:col from the loader
    assert "Traceback" not in res2.output


def test_docs_cli_examples_are_current(tmp_path: Path) -> None:
    """docs/spf.md's example file and `mailsim spf check` transcripts match the code."""
    import re
    import shlex

    doc = (Path(__file__).parent.parent / "docs" / "spf.md").read_text(encoding="utf-8")
    yaml_block = re.search(r"Save this as `spf-demo.yaml`:\n\n```yaml\n(.*?)```", doc, re.DOTALL)
    assert yaml_block is not None
    (tmp_path / "spf-demo.yaml").write_text(yaml_block.group(1))
    lines = doc.splitlines()
    checked = 0
    for i, line in enumerate(lines):
        if not line.startswith("$ mailsim spf check "):
            continue
        args = shlex.split(line[len("$ mailsim spf ") :])
        if args[1] != "spf-demo.yaml":
            continue  # the snapshot transcript: tests/test_dns_snapshot.py runs it against a server
        args[1] = str(tmp_path / args[1])
        res = CliRunner().invoke(spf_app, args)
        assert res.exit_code == 0
        assert res.output == lines[i + 1] + "\n", line
        checked += 1
    assert checked == 4


def test_cli_never_prints_raw_control_bytes(tmp_path: Path) -> None:
    """An explanation built from a hostile sender (here via exp=%{l}) reaches the terminal escaped."""
    text = SCENARIO.replace("%{i} may not send for %{d}", "%{l}")
    sender = "a\x1b[2Jb@acme.example"
    res = spf_cli(tmp_path, "--ip", "192.0.2.3", "--sender", sender, "--helo", "h.example", text=text)
    assert res.exit_code == 0
    assert "\x1b" not in res.output
    assert res.output.endswith("explanation: a\\027[2Jb\n")
    doc = json.loads(spf_cli(tmp_path, "--ip", "192.0.2.3", "--sender", sender, "--json", text=text).output)
    assert doc["exp"] == "a\x1b[2Jb"  # the RFC's string, exactly (JSON escapes it on the way out)


def test_explanations_show_odd_bytes_from_dns_data_escaped() -> None:
    """Names from MX (or PTR) data may hold any bytes; the human explanation shows them escaped."""
    from simulator.net.dnsview import DnsView

    zone = Zone(
        [
            DnsRecord("example.com", "TXT", "v=spf1 mx -all"),
            DnsRecord("example.com", "MX", r"10 evil\027[31m.example"),
            DnsRecord(r"evil\027[31m.example", "A", "192.0.2.9"),
        ],
        [r"evil\027[31m.example"],
    )
    res = check_host("192.0.2.3", "example.com", "u@example.com", "h.example", MemoryResolver(zone))
    assert (res.result, res.explanation) == ("temperror", r"DNS timeout looking up A evil\027[31m.example")
    zone.set_unreachable([])
    route = DnsView(zone, (), 0).mx(0, "example.com")
    assert route.host == "evil\x1b[31m.example"  # the name itself, as DNS has it
    assert route.detail == r"example.com MX → evil\027[31m.example [192.0.2.9]"


# -- §4.3's <domain> check: one pass over the name instead of one per character -----------------------


def _valid_domain_by_character(domain: str) -> bool:
    d = domain[:-1] if domain.endswith(".") else domain
    if not d or len(d) > 253 or not d.isascii():
        return False
    labels = d.split(".")
    return (len(labels) >= 2 and all(0 < len(lab) <= 63 for lab in labels)
            and not any(c.isspace() or not c.isprintable() for lab in labels for c in lab)
            and not labels[-1].isdigit())


@settings(max_examples=500)
@given(st.lists(st.text(alphabet=st.characters(max_codepoint=0x80), max_size=6), min_size=1, max_size=5)
       .map(".".join))
def test_valid_domain_is_the_character_by_character_rule(domain: str) -> None:
    from simulator.net.spf_record import valid_domain

    assert valid_domain(domain) == _valid_domain_by_character(domain)


@pytest.mark.parametrize("domain", ["a.b", "a.b.", "a b.example", "a\tb.example", "a\x1fb.example", "a\x7fb.example",
                                    "example", "1.2.3.4", "a..b", "é.example"])
def test_valid_domain_cases(domain: str) -> None:
    from simulator.net.spf_record import valid_domain

    assert valid_domain(domain) == _valid_domain_by_character(domain)
