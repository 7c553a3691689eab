"""Zone: the authoritative answer logic shared by the memory resolver and the DNS server."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.domain.dns import Dns, DnsRecord
from simulator.domain.entities import DEFAULT_PROVIDERS, Provider
from simulator.domain.faults import Fault
from simulator.net.zone import (
    MAX_CNAME_CHAIN,
    NOERROR,
    NXDOMAIN,
    SERVFAIL,
    TIMEOUT,
    Zone,
    check_record,
    txt_strings,
)
from simulator.scenario.errors import ScenarioError
from simulator.scenario.loader import load_scenario
from simulator.scenario.model import Scenario


def R(name: str, rtype: str, value: str | tuple[str, ...]) -> DnsRecord:
    return DnsRecord(name=name, type=rtype, value=value)


def test_names_are_case_insensitive_and_trailing_dot_free() -> None:
    z = Zone([R("Acme.Example.", "A", "192.0.2.1")])
    ans = z.answer("ACME.example.", "a")
    assert ans.rcode == NOERROR
    assert [r.value for r in ans.records] == ["192.0.2.1"]
    assert ans.records[0].name == "acme.example"


def test_nxdomain_vs_nodata_and_empty_non_terminal() -> None:
    z = Zone([R("mx.client.example", "A", "192.0.2.25")])
    assert z.answer("mx.client.example", "AAAA").rcode == NOERROR
    assert z.answer("mx.client.example", "AAAA").records == ()
    # client.example owns nothing but has a name below it: NODATA, not NXDOMAIN
    assert z.answer("client.example", "A").rcode == NOERROR
    assert z.answer("nope.client.example", "A").rcode == NXDOMAIN
    assert z.answer("other.example", "TXT").rcode == NXDOMAIN


def test_records_keep_file_order() -> None:
    ips = ["192.0.2.9", "192.0.2.1", "192.0.2.5"]
    z = Zone([R("h.example", "A", ip) for ip in ips])
    assert [r.value for r in z.answer("h.example", "A").records] == ips


def test_cname_chain_followed_inside_the_zone() -> None:
    z = Zone(
        [
            R("www.example", "CNAME", "web.example"),
            R("web.example", "CNAME", "host.example."),
            R("host.example", "A", "192.0.2.7"),
        ]
    )
    ans = z.answer("www.example", "A")
    assert ans.rcode == NOERROR
    assert [(r.name, r.type) for r in ans.records] == [
        ("www.example", "CNAME"),
        ("web.example", "CNAME"),
        ("host.example", "A"),
    ]
    assert ans.final_name == "host.example"
    assert [r.value for r in ans.rrs("A")] == ["192.0.2.7"]
    # asking for the CNAME itself does not follow it
    only = z.answer("www.example", "CNAME")
    assert [r.value for r in only.records] == ["web.example"]


def test_cname_to_missing_name_is_nxdomain_with_the_chain() -> None:
    z = Zone([R("alias.example", "CNAME", "gone.example")])
    ans = z.answer("alias.example", "A")
    assert ans.rcode == NXDOMAIN
    assert [r.type for r in ans.records] == ["CNAME"]


def test_cname_loop_is_flagged_not_followed_forever() -> None:
    z = Zone([R("a.example", "CNAME", "b.example"), R("b.example", "CNAME", "a.example")])
    ans = z.answer("a.example", "TXT")
    assert ans.cname_loop
    assert len(ans.records) == 2
    self_loop = Zone([R("s.example", "CNAME", "s.example")]).answer("s.example", "A")
    assert self_loop.cname_loop


def test_long_cname_chain_flagged_like_dnspython() -> None:
    n = MAX_CNAME_CHAIN
    recs = [R(f"c{i}.example", "CNAME", f"c{i + 1}.example") for i in range(n)]
    recs.append(R(f"c{n}.example", "A", "192.0.2.1"))
    assert Zone(recs).answer("c0.example", "A").cname_loop
    # one shorter resolves
    assert not Zone(recs).answer("c1.example", "A").cname_loop


def test_wildcard_synthesis_rfc4592() -> None:
    z = Zone(
        [
            R("*.example.com", "TXT", "v=spf1 -all"),
            R("*.example.com", "A", "192.0.2.99"),
            R("sub.example.com", "MX", "10 mx.example.com"),
            R("deep.empty.example.com", "A", "192.0.2.3"),
        ]
    )
    ans = z.answer("Host.Example.com", "TXT")
    assert ans.rcode == NOERROR
    assert [(r.name, r.value) for r in ans.records] == [("host.example.com", "v=spf1 -all")]
    # a wildcard matches names several labels below too
    assert z.answer("a.b.example.com", "A").records[0].value == "192.0.2.99"
    # an existing name is not overridden by the wildcard: NODATA
    nodata = z.answer("sub.example.com", "A")
    assert nodata.rcode == NOERROR and nodata.records == ()
    # names below an existing name (closest encloser has no wildcard): NXDOMAIN
    assert z.answer("x.sub.example.com", "A").rcode == NXDOMAIN
    # an empty non-terminal blocks the wildcard as well
    assert z.answer("empty.example.com", "A").records == ()
    assert z.answer("empty.example.com", "A").rcode == NOERROR
    assert z.answer("x.empty.example.com", "A").rcode == NXDOMAIN
    # the wildcard owner itself answers literally
    assert z.answer("*.example.com", "A").records[0].name == "*.example.com"
    # the parent of the wildcard is an empty non-terminal, not matched by it
    assert z.answer("example.com", "A").rcode == NOERROR
    assert z.answer("example.com", "A").records == ()


def test_wildcard_cname() -> None:
    z = Zone([R("*.w.example", "CNAME", "t.example"), R("t.example", "A", "192.0.2.4")])
    ans = z.answer("x.w.example", "A")
    assert [(r.name, r.type) for r in ans.records] == [("x.w.example", "CNAME"), ("t.example", "A")]


def test_multi_string_txt_and_spf_type() -> None:
    z = Zone([R("m.example", "TXT", ("v=spf1 ", "-all")), R("m.example", "SPF", "v=spf1 -all")])
    assert z.answer("m.example", "TXT").records[0].value == ("v=spf1 ", "-all")
    assert z.answer("m.example", "SPF").records[0].text == "v=spf1 -all"


def test_txt_strings_split_long_values() -> None:
    long = "x" * 600
    assert [len(s) for s in txt_strings(long)] == [255, 255, 90]
    assert txt_strings(("a", "b")) == (b"a", b"b")
    assert txt_strings("") == (b"",)


def test_values_are_normalized_and_validated() -> None:
    z = Zone(
        [
            R("m.example", "MX", "10   MX.Example."),
            R("six.example", "AAAA", "2001:DB8:0::1"),
            R("3.2.0.192.in-addr.arpa", "PTR", "Host.Example."),
        ]
    )
    assert z.answer("m.example", "MX").records[0].value == "10 mx.example"
    assert z.answer("six.example", "AAAA").records[0].value == "2001:db8::1"
    assert z.answer("3.2.0.192.in-addr.arpa", "PTR").records[0].value == "host.example"
    with pytest.raises(ValueError, match="IPv4"):
        Zone([R("bad.example", "A", "300.1.1.1")])
    assert check_record("MX", "mx.example") is not None
    assert check_record("MX", "70000 mx.example") is not None
    assert check_record("A", ("1.2.3.4",)) is not None
    assert check_record("HINFO", "x") is not None
    assert check_record("TXT", ("a", "b")) is None


def test_unreachable_names_and_subdomains_time_out() -> None:
    z = Zone(
        [R("slow.example", "TXT", "v=spf1 -all"), R("a.example", "CNAME", "x.slow.example")],
        unreachable=["Slow.Example"],
    )
    assert z.answer("slow.example", "TXT").rcode == TIMEOUT
    assert z.answer("x.slow.example", "A").timeout
    # a chain that leads into an unreachable name times out too
    assert z.answer("a.example", "A").timeout
    assert z.answer("fast.example", "A").rcode == NXDOMAIN


def test_set_and_delete_bump_version_and_keep_order() -> None:
    z = Zone([R("a.example", "A", "192.0.2.1"), R("a.example", "TXT", "one"), R("a.example", "A", "192.0.2.2")])
    v0 = z.version
    z.set("A.example", "txt", "two")
    assert z.version == v0 + 1
    assert [r.value for r in z.answer("a.example", "TXT").records] == ["two"]
    z.set("a.example", "A", "192.0.2.3")
    assert [(r.type, r.value) for r in z.records] == [("A", "192.0.2.3"), ("TXT", "two")]
    assert z.delete("a.example", "A") == 1
    assert z.version == v0 + 3
    assert z.answer("a.example", "A").rcode == NOERROR
    assert z.delete("a.example", "TXT") == 1
    assert z.answer("a.example", "TXT").rcode == NXDOMAIN
    z.set("new.example", "A", "192.0.2.8")
    assert z.answer("new.example", "A").records[0].value == "192.0.2.8"


def test_provider_spf_auto_published_unless_present() -> None:
    provs = (
        Provider("p1", ("203.0.113.20", "2001:db8::20"), "spf.p1.example"),
        Provider("p2", ("203.0.113.30",), "_spf.p2.example"),
        Provider("p3", ("203.0.113.40",), None),
    )
    z = Zone([R("_spf.p2.example", "TXT", "v=spf1 ?all")], (), provs)
    assert z.answer("spf.p1.example", "TXT").records[0].value == ("v=spf1 ip4:203.0.113.20 ip6:2001:db8::20 -all")
    assert [r.value for r in z.answer("_spf.p2.example", "TXT").records] == ["v=spf1 ?all"]


def test_from_scenario_uses_default_providers() -> None:
    scn = Scenario(
        name="t",
        start=datetime(2026, 1, 1, tzinfo=UTC),
        dns=Dns(
            records=(R("acme.example", "TXT", "v=spf1 include:spf.protection.outlook.com -all"),),
            unreachable=("down.example",),
        ),
    )
    z = Zone.from_scenario(scn)
    assert DEFAULT_PROVIDERS[0].spf_include == "spf.protection.outlook.com"
    assert z.answer("spf.protection.outlook.com", "TXT").records[0].value == "v=spf1 ip4:203.0.113.20 -all"
    assert z.answer("_spf.google.com", "TXT").records[0].value == "v=spf1 ip4:203.0.113.30 -all"
    assert z.answer("down.example", "A").timeout


def test_faults_window_target_and_kind() -> None:
    z = Zone([R("acme.example", "TXT", "v=spf1 -all"), R("other.example", "A", "192.0.2.1")])
    faults = (
        Fault(index=0, kind="dns_timeout", at=3600, for_=600, target="acme.example"),
        Fault(index=1, kind="outage", target=None),  # SMTP fault: ignored by DNS
        Fault(index=2, kind="dns_servfail", at=7200, target="Other.Example"),
    )
    assert z.lookup("acme.example", "TXT", now=0, faults=faults).rcode == NOERROR
    assert z.lookup("acme.example", "TXT", now=3600, faults=faults).rcode == TIMEOUT
    assert z.lookup("x.acme.example", "A", now=3700, faults=faults).rcode == TIMEOUT
    assert z.lookup("acme.example", "TXT", now=4200, faults=faults).rcode == NOERROR
    assert z.lookup("other.example", "A", now=7199, faults=faults).rcode == NOERROR
    assert z.lookup("other.example", "A", now=10**6, faults=faults).rcode == SERVFAIL
    assert z.lookup("acme.example", "TXT", now=10**6, faults=faults).rcode == NOERROR


def test_fault_with_no_target_hits_every_name_and_chain_targets() -> None:
    z = Zone([R("a.example", "CNAME", "b.example"), R("b.example", "A", "192.0.2.1")])
    everything = (Fault(index=0, kind="dns_servfail"),)
    assert z.lookup("nothing.example", "A", faults=everything).rcode == SERVFAIL
    on_target = (Fault(index=0, kind="dns_timeout", target="b.example"),)
    assert z.lookup("a.example", "A", faults=on_target).rcode == TIMEOUT


def test_probabilistic_faults_are_deterministic_and_keyed() -> None:
    z = Zone([R(f"h{i}.example", "A", "192.0.2.1") for i in range(400)])
    f = (Fault(index=3, kind="dns_servfail", probability=0.25),)

    def hits(seed: int) -> list[bool]:
        return [z.lookup(f"h{i}.example", "A", faults=f, seed=seed).rcode == SERVFAIL for i in range(400)]

    first = hits(7)
    assert first == hits(7)  # same seed, same draws, whatever the call order
    assert [z.lookup(f"h{i}.example", "A", faults=f, seed=7).rcode == SERVFAIL for i in reversed(range(400))] == list(
        reversed(first)
    )
    assert first != hits(8)
    assert 50 < sum(first) < 150  # roughly a quarter of 400
    never = (Fault(index=0, kind="dns_timeout", probability=0.0),)
    assert z.lookup("h1.example", "A", faults=never).rcode == NOERROR


# --- zone-file escapes (DESIGN §8: DNS data holds what real DNS can hold) ---------------------

from simulator.domain.dns import (  # noqa: E402
    DnsTextError,
    Unreachable,
    bytes_to_text,
    canonical_name,
    canonical_text,
    display,
    labels_to_name,
    name_key,
    name_to_labels,
    text_to_bytes,
)


@pytest.mark.parametrize(
    ("written", "data"),
    [
        ("plain", b"plain"),
        (r"\000\013\010\255", b"\x00\r\n\xff"),
        (r"a\"b\\c\;", b'a"b\\c;'),
        ("Grüße", "Grüße".encode()),
        (r"\0651", b"A1"),  # exactly three digits, then a plain digit
        ("", b""),
    ],
)
def test_text_escapes_decode_to_bytes(written: str, data: bytes) -> None:
    assert text_to_bytes(written) == data
    assert text_to_bytes(bytes_to_text(data)) == data  # lossless round trip


@pytest.mark.parametrize("bad", ["end\\", r"\25", r"\2x5", r"\256", "\\"])
def test_bad_escapes_are_refused_with_a_reason(bad: str) -> None:
    with pytest.raises(DnsTextError, match=r"\\"):
        text_to_bytes(bad)


def test_canonical_text_escapes_only_what_a_terminal_must_not_see() -> None:
    assert canonical_text("v=spf1 -all") == "v=spf1 -all"
    assert canonical_text('say "hi" \\\\ ok') == 'say "hi" \\\\ ok'
    assert canonical_text("\x1b[31mred") == r"\027[31mred"
    assert canonical_text(r"\195\188") == "ü"  # valid UTF-8 stays readable
    assert canonical_text(r"\195") == r"\195"  # a lone byte does not
    assert canonical_text("\u202eevil") == r"\226\128\174evil"  # bidi override: not printable
    assert display("a\x07b") == r"a\007b"
    assert display("fine text") == "fine text"


def test_names_hold_any_label_bytes() -> None:
    assert canonical_name("Foo:Bar/Baz.Example.") == "foo:bar/baz.example"
    assert canonical_name("macro%percent  space.example") == r"macro%percent\032\032space.example"
    assert canonical_name(r"macro%percent\032\032space.example") == r"macro%percent\032\032space.example"
    assert canonical_name(r"dot\.in.label.example") == r"dot\.in.label.example"
    assert canonical_name(r"\066\067.example") == "bc.example"  # case-folded after decoding
    assert canonical_name("*.w.example", wildcard=True) == "*.w.example"
    assert canonical_name(".", root=True) == "."
    assert name_key("Macro%percent  space.example") == r"macro%percent\032\032space.example"
    for bad, why in [
        ("a..example", "empty label"),
        ("x" * 64 + ".example", "64 octets"),
        (".".join(["x" * 63] * 4), "257 octets"),
        (".".join(["x" * 63] * 3 + ["x" * 62]), "256 octets"),
        ("", "empty name"),
    ]:
        with pytest.raises(DnsTextError, match=why):
            canonical_name(bad)
    assert canonical_name(".".join(["x" * 63] * 3 + ["x" * 61])).endswith("x" * 61)  # 255 octets: the limit
    with pytest.raises(DnsTextError, match="leftmost"):
        canonical_name("a.*.example", wildcard=True)


def test_zone_answers_escaped_names_and_serves_bytes() -> None:
    z = Zone([R("a b.example", "TXT", r"x\000y"), R(r"c\.d.example", "A", "192.0.2.1")])
    assert [r.name for r in z.records] == [r"a\032b.example", r"c\.d.example"]
    assert z.answer(r"a\032b.example", "TXT").rcode == NOERROR
    assert txt_strings(z.answer(r"A\032B.example", "TXT").records[0].value) == (b"x\x00y",)
    assert z.answer(r"c\.d.example", "A").rcode == NOERROR
    assert z.answer("d.example", "A").rcode == NXDOMAIN  # "c.d" is one label: no d.example above it
    assert z.answer("c.d.example", "A").rcode == NXDOMAIN  # the dot is inside the label


def test_record_size_limits() -> None:
    assert check_record("TXT", "x" * 65_535) is None  # DESIGN §8: a value may be up to 65,535 bytes
    assert check_record("TXT", ("x" * 255,) * 257) is None
    problem = check_record("TXT", "x" * 65_536)
    assert problem == "a TXT value of 65,536 octets (at most 65,535)"
    assert check_record("SPF", (r"\000" * 65_535, "x")) == "a SPF value of 65,536 octets (at most 65,535)"
    assert check_record("TXT", r"bad\9") is not None
    assert check_record("MX", "0 .") is None
    assert check_record("TXT", "") is None


def test_unreachable_rules() -> None:
    z = Zone(
        [R("exact.example", "A", "192.0.2.1"), R("a.exact.example", "A", "192.0.2.2")],
        unreachable=[
            "down.example",
            Unreachable("Exact.Example", subdomains=False),
            Unreachable("p.example", ("txt",)),
        ],
    )
    assert z.answer("x.down.example", "MX").rcode == TIMEOUT
    assert z.answer("exact.example", "A").rcode == TIMEOUT
    assert z.answer("a.exact.example", "A").rcode == NOERROR
    assert z.answer("p.example", "TXT").rcode == TIMEOUT
    assert z.answer("q.p.example", "TXT").rcode == TIMEOUT
    assert z.answer("p.example", "A").rcode == NXDOMAIN


DNS_YAML = """\
schema: mailsim/1
name: escapes
start: 2026-11-02T09:00:00Z
dns:
  records:
    - {name: 'macro%percent  space%20url-space.example.com', type: TXT, value: 'v=spf1 a:c.example\\013ptr -all'}
    - {name: 'foo:bar/baz.example.com', type: TXT, value: ['', 'x\\000y']}
    - {name: null.example.com, type: MX, value: "0 ."}
    - {name: alias.example.com, type: CNAME, value: 'odd\\032name.example'}
  unreachable:
    - slow.example
    - {name: exact.example, subdomains: false}
    - {name: picky.example, types: [txt, a]}
"""


def test_loader_keeps_escapes_and_reads_unreachable_rules(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(DNS_YAML)
    scn = load_scenario(path)
    assert [(r.name, r.value) for r in scn.dns.records] == [
        (r"macro%percent\032\032space%20url-space.example.com", r"v=spf1 a:c.example\013ptr -all"),
        ("foo:bar/baz.example.com", ("", r"x\000y")),
        ("null.example.com", "0 ."),
        ("alias.example.com", r"odd\032name.example"),
    ]
    assert scn.dns.unreachable == ("slow.example",)
    assert scn.dns.unreachable_rules == (
        Unreachable("exact.example", (), False),
        Unreachable("picky.example", ("TXT", "A"), True),
    )


@pytest.mark.parametrize(
    ("old", "new", "where", "message"),
    [
        ("a:c.example\\\\013ptr", "a:c.example\\\\13ptr", "'v=spf1", r"'\13p' at character 19: a byte escape"),
        ("'odd\\\\032name.example'", "'odd..name'", "'odd..", "empty label"),
        ("subdomains: false", "subdomain: false", "subdomain:", "unknown key 'subdomain'"),
        ("types: [txt, a]", "types: [txt, aa]", "aa]", "unknown record type 'AA'; did you mean 'AAAA'?"),
    ],
)
def test_loader_dns_errors_name_the_place(tmp_path: Path, old: str, new: str, where: str, message: str) -> None:
    text = DNS_YAML.replace(old.replace("\\\\", "\\"), new.replace("\\\\", "\\"))
    assert text != DNS_YAML
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as e:
        load_scenario(path)
    index = text.index(new.replace("\\\\", "\\")) if where in new else text.index(where)
    line = text.count("\n", 0, index) + 1
    assert e.value.line == line
    assert message in str(e.value)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_text_codec_round_trips_any_bytes(data: bytes) -> None:
    text = bytes_to_text(data)
    assert text_to_bytes(text) == data
    assert canonical_text(text) == text  # the canonical spelling is a fixed point
    assert display(text) == text  # and terminal-safe as it stands
    assert text.isprintable()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=20), min_size=1, max_size=5))
def test_name_codec_round_trips_any_labels(labels: list[bytes]) -> None:
    name = labels_to_name(labels)
    assert name_to_labels(name) == tuple(lab.lower() for lab in labels)
    assert canonical_name(name, root=True) == name
    assert name.isprintable() and " " not in name
