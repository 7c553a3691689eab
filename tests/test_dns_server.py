"""The loopback authoritative DNS server, probed with dnspython (and dig when installed)."""

from __future__ import annotations

import re
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.domain.dns import DnsRecord
from simulator.domain.faults import Fault
from simulator.net.dns_server import DnsServer, DnsServerThread
from simulator.net.resolver import (
    DnsCnameLoop,
    DnsServFail,
    DnsTimeout,
    MemoryResolver,
    NXDomain,
    WireResolver,
)
from simulator.net.spf import check_host
from simulator.net.zone import Zone

HOST = "127.0.0.1"
OK_TIMEOUT = 5.0  # generous: only ever reached if the server is broken
SILENCE = 0.5  # how long we wait to conclude that no reply is coming


def R(name: str, rtype: str, value: str | tuple[str, ...]) -> DnsRecord:
    return DnsRecord(name=name, type=rtype, value=value)


BIG = [R("big.example", "TXT", f"{i:02d}-" + "x" * 180) for i in range(8)]  # ~1.5 kB answer

RECORDS = [
    R("a.example", "A", "192.0.2.9"),
    R("a.example", "A", "192.0.2.1"),
    R("a.example", "A", "192.0.2.5"),
    R("a.example", "AAAA", "2001:db8::1"),
    R("a.example", "MX", "20 mx2.example"),
    R("a.example", "MX", "10 mx1.example"),
    R("a.example", "TXT", ("v=spf1 ", "ip4:192.0.2.0/24 ", "-all")),
    R("a.example", "SPF", "v=spf1 -all"),
    R("a.example", "NS", "ns1.example"),
    R("www.example", "CNAME", "alias.example"),
    R("alias.example", "CNAME", "a.example"),
    R("dangling.example", "CNAME", "gone.example"),
    R("*.wild.example", "TXT", "wildcard"),
    R("sub.wild.example", "A", "192.0.2.77"),
    R("loop1.example", "CNAME", "loop2.example"),
    R("loop2.example", "CNAME", "loop1.example"),
    R("3.2.0.192.in-addr.arpa", "PTR", "a.example"),
    *BIG,
]


@pytest.fixture(scope="module")
def zone() -> Zone:
    return Zone(RECORDS, unreachable=["slow.example"])


@pytest.fixture(scope="module")
def server(zone: Zone) -> Iterator[DnsServerThread]:
    with DnsServerThread(zone) as srv:
        yield srv


def udp(srv: DnsServerThread, name: str, rdtype: str, **kw: object) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, **kw)  # type: ignore[arg-type]
    return dns.query.udp(q, HOST, port=srv.port, timeout=OK_TIMEOUT)


def tcp(srv: DnsServerThread, name: str, rdtype: str) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype)
    return dns.query.tcp(q, HOST, port=srv.port, timeout=OK_TIMEOUT)


def texts(msg: dns.message.Message) -> list[str]:
    return [rd.to_text() for rrset in msg.answer for rd in rrset]


# --- answers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_positive_answers_every_type(server: DnsServerThread, transport: str) -> None:
    ask = udp if transport == "udp" else tcp
    expect = {
        "A": ["192.0.2.9", "192.0.2.1", "192.0.2.5"],
        "AAAA": ["2001:db8::1"],
        "MX": ["20 mx2.example.", "10 mx1.example."],
        "TXT": ['"v=spf1 " "ip4:192.0.2.0/24 " "-all"'],
        "SPF": ['"v=spf1 -all"'],
        "NS": ["ns1.example."],
    }
    for rdtype, values in expect.items():
        msg = ask(server, "A.Example.", rdtype)
        assert msg.rcode() == dns.rcode.NOERROR
        assert msg.flags & dns.flags.AA
        assert not msg.flags & dns.flags.TC
        # names compress against the question, so they may come back in its case
        assert [t.lower() for t in texts(msg)] == [v.lower() for v in values], rdtype
    ptr = ask(server, "3.2.0.192.in-addr.arpa", "PTR")
    assert texts(ptr) == ["a.example."]


def test_record_order_is_fixed(server: DnsServerThread) -> None:
    orders = {tuple(texts(udp(server, "a.example", "A"))) for _ in range(25)}
    assert orders == {("192.0.2.9", "192.0.2.1", "192.0.2.5")}


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_nxdomain_and_nodata_carry_soa(server: DnsServerThread, transport: str) -> None:
    ask = udp if transport == "udp" else tcp
    nx = ask(server, "nothing.example", "A")
    assert nx.rcode() == dns.rcode.NXDOMAIN
    assert nx.flags & dns.flags.AA
    assert nx.answer == []
    assert [rs.rdtype for rs in nx.authority] == [dns.rdatatype.SOA]
    nodata = ask(server, "a.example", "CNAME")
    assert nodata.rcode() == dns.rcode.NOERROR and nodata.answer == []
    assert [rs.rdtype for rs in nodata.authority] == [dns.rdatatype.SOA]
    # empty non-terminal: NODATA, not NXDOMAIN
    ent = ask(server, "in-addr.arpa", "A")
    assert ent.rcode() == dns.rcode.NOERROR and ent.answer == []


def test_cname_chain_in_one_answer(server: DnsServerThread) -> None:
    msg = udp(server, "www.example", "A")
    assert [(rs.name.to_text(), dns.rdatatype.to_text(rs.rdtype)) for rs in msg.answer] == [
        ("www.example.", "CNAME"),
        ("alias.example.", "CNAME"),
        ("a.example.", "A"),
    ]
    dangling = udp(server, "dangling.example", "A")
    assert dangling.rcode() == dns.rcode.NXDOMAIN
    assert texts(dangling) == ["gone.example."]


def test_wildcards(server: DnsServerThread) -> None:
    msg = udp(server, "host.wild.example", "TXT")
    assert [rs.name.to_text() for rs in msg.answer] == ["host.wild.example."]
    assert texts(msg) == ['"wildcard"']
    assert udp(server, "sub.wild.example", "TXT").answer == []  # existing name: NODATA
    assert udp(server, "sub.wild.example", "TXT").rcode() == dns.rcode.NOERROR
    assert udp(server, "x.sub.wild.example", "TXT").rcode() == dns.rcode.NXDOMAIN


def test_large_answer_truncated_over_udp_and_whole_over_tcp(server: DnsServerThread) -> None:
    small = udp(server, "big.example", "TXT")
    assert small.flags & dns.flags.TC
    assert small.answer == []
    full = tcp(server, "big.example", "TXT")
    assert not full.flags & dns.flags.TC
    assert len(texts(full)) == 8
    assert texts(full)[0].startswith('"00-')
    # a client offering a 4096-byte EDNS buffer still gets at most 1,232 bytes (the flag-day
    # value): this ~1.6 kB answer is truncated, and the server advertises its own 1,232
    edns = udp(server, "big.example", "TXT", use_edns=0, payload=4096)
    assert edns.flags & dns.flags.TC
    assert edns.answer == []
    assert edns.payload == 1232
    # but a 512-byte EDNS offer is honoured as 512
    tight = udp(server, "big.example", "TXT", use_edns=0, payload=512)
    assert tight.flags & dns.flags.TC


def test_unreachable_names_get_no_reply(server: DnsServerThread) -> None:
    q = dns.message.make_query("x.slow.example", "A")
    with pytest.raises(dns.exception.Timeout):
        dns.query.udp(q, HOST, port=server.port, timeout=SILENCE)
    # and the server keeps answering
    assert texts(udp(server, "a.example", "AAAA")) == ["2001:db8::1"]


def test_zone_changes_while_serving(zone: Zone) -> None:
    z = Zone([R("c.example", "TXT", "v=spf1 -all")])
    with DnsServerThread(z) as srv:
        assert texts(udp(srv, "c.example", "TXT")) == ['"v=spf1 -all"']
        z.set("c.example", "TXT", "v=spf1 +all")
        assert texts(udp(srv, "c.example", "TXT")) == ['"v=spf1 +all"']
        z.delete("c.example", "TXT")
        gone = udp(srv, "c.example", "TXT")
        assert gone.rcode() == dns.rcode.NXDOMAIN
        soa = gone.authority[0][0]
        assert soa.serial == z.version  # type: ignore[attr-defined]


def test_faults_follow_the_clock() -> None:
    z = Zone([R("acme.example", "TXT", "v=spf1 -all"), R("other.example", "A", "192.0.2.1")])
    clock = [0]
    faults = (
        Fault(index=0, kind="dns_timeout", at=100, for_=50, target="acme.example"),
        Fault(index=1, kind="dns_servfail", at=200, target="other.example"),
    )
    with DnsServerThread(z, faults=faults, clock=lambda: clock[0]) as srv:
        assert udp(srv, "acme.example", "TXT").rcode() == dns.rcode.NOERROR
        clock[0] = 120
        with pytest.raises(dns.exception.Timeout):
            dns.query.udp(dns.message.make_query("acme.example", "TXT"), HOST, port=srv.port, timeout=SILENCE)
        assert udp(srv, "other.example", "A").rcode() == dns.rcode.NOERROR
        clock[0] = 250
        assert udp(srv, "acme.example", "TXT").rcode() == dns.rcode.NOERROR
        assert udp(srv, "other.example", "A").rcode() == dns.rcode.SERVFAIL
        assert tcp(srv, "other.example", "A").rcode() == dns.rcode.SERVFAIL


# --- protocol edge cases ---------------------------------------------------------------------


def _raw_udp(srv: DnsServerThread, payload: bytes, wait: float = OK_TIMEOUT) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(wait)
        s.sendto(payload, (HOST, srv.port))
        try:
            return s.recv(65535)
        except TimeoutError:
            return None


def test_refused_notimp_formerr(server: DnsServerThread) -> None:
    chaos = dns.message.make_query("version.bind", "TXT", rdclass=dns.rdataclass.CH)
    assert dns.query.udp(chaos, HOST, port=server.port, timeout=OK_TIMEOUT).rcode() == dns.rcode.REFUSED
    notify = dns.message.make_query("a.example", "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    assert dns.query.udp(notify, HOST, port=server.port, timeout=OK_TIMEOUT).rcode() == dns.rcode.NOTIMP
    two = dns.message.make_query("a.example", "A")
    two.question.append(dns.rrset.RRset(two.question[0].name, dns.rdataclass.IN, dns.rdatatype.AAAA))
    assert dns.query.udp(two, HOST, port=server.port, timeout=OK_TIMEOUT).rcode() == dns.rcode.FORMERR
    axfr = dns.message.make_query("a.example", "AXFR")
    assert dns.query.tcp(axfr, HOST, port=server.port, timeout=OK_TIMEOUT).rcode() == dns.rcode.REFUSED


def test_garbage_with_a_header_gets_formerr(server: DnsServerThread) -> None:
    packet = struct.pack("!HHHHHH", 0xBEEF, 0x0100, 1, 0, 0, 0) + b"\x07trunc"
    reply = _raw_udp(server, packet)
    assert reply is not None
    msg = dns.message.from_wire(reply)
    assert msg.id == 0xBEEF
    assert msg.rcode() == dns.rcode.FORMERR
    assert msg.flags & dns.flags.QR


def test_responses_and_runts_are_dropped(server: DnsServerThread) -> None:
    response = dns.message.make_response(dns.message.make_query("a.example", "A")).to_wire()
    assert _raw_udp(server, response, wait=SILENCE) is None
    assert _raw_udp(server, b"\x01\x02\x03", wait=SILENCE) is None
    assert texts(udp(server, "a.example", "AAAA")) == ["2001:db8::1"]


def test_tcp_several_queries_and_junk_on_one_connection(server: DnsServerThread) -> None:
    with socket.create_connection((HOST, server.port), timeout=OK_TIMEOUT) as s:

        def send(wire: bytes) -> None:
            s.sendall(struct.pack("!H", len(wire)) + wire)

        def recv() -> dns.message.Message:
            head = b""
            while len(head) < 2:
                head += s.recv(2 - len(head))
            (n,) = struct.unpack("!H", head)
            body = b""
            while len(body) < n:
                body += s.recv(n - len(body))
            return dns.message.from_wire(body)

        send(b"\x00\x01junk")  # too short to have a header: skipped, connection stays up
        send(dns.message.make_query("a.example", "AAAA").to_wire())
        send(dns.message.make_query("big.example", "TXT").to_wire())
        first, second = recv(), recv()
        assert texts(first) == ["2001:db8::1"]
        assert len(texts(second)) == 8


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        st.binary(max_size=600),
        st.binary(min_size=1, max_size=8).map(lambda b: b * 1200),  # oversized datagrams
        st.builds(
            lambda wire, cut: wire[:cut],
            st.sampled_from(
                [
                    dns.message.make_query("a.example", "A").to_wire(),
                    dns.message.make_query("big.example", "TXT", use_edns=0).to_wire(),
                ]
            ),
            st.integers(min_value=0, max_value=60),
        ),
    )
)
def test_hostile_udp_packets_never_stop_the_server(server: DnsServerThread, packet: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(packet, (HOST, server.port))
    assert texts(udp(server, "a.example", "AAAA")) == ["2001:db8::1"]


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_handle_never_raises_and_replies_only_to_queries(packet: bytes, over_tcp: bool) -> None:
    srv = DnsServer(Zone(RECORDS, ["slow.example"]))
    reply = srv.handle(packet, tcp=over_tcp)
    if reply is None:
        return
    assert len(packet) >= 12 and not packet[2] & 0x80
    assert reply[:2] == packet[:2]  # same id
    assert reply[2] & 0x80  # QR
    dns.message.from_wire(reply)


def test_only_loopback_binds() -> None:
    z = Zone()
    for host in ("0.0.0.0", "192.0.2.1", "localhost", "::"):
        with pytest.raises(ValueError):
            DnsServer(z, host=host)


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        srv = DnsServerThread(Zone([R("six.example", "AAAA", "2001:db8::6")]), host="::1").start()
    except OSError:
        pytest.skip("::1 not available here")
    try:
        q = dns.message.make_query("six.example", "AAAA")
        assert texts(dns.query.udp(q, "::1", port=srv.port, timeout=OK_TIMEOUT)) == ["2001:db8::6"]
        assert texts(dns.query.tcp(q, "::1", port=srv.port, timeout=OK_TIMEOUT)) == ["2001:db8::6"]
    finally:
        srv.stop()


async def test_async_context_manager() -> None:
    async with DnsServer(Zone([R("async.example", "A", "192.0.2.44")])) as srv:
        assert srv.port > 0
        q = dns.message.make_query("async.example", "A")
        r = await dns.asyncquery.udp(q, HOST, port=srv.port, timeout=OK_TIMEOUT)
        assert texts(r) == ["192.0.2.44"]
        r = await dns.asyncquery.tcp(q, HOST, port=srv.port, timeout=OK_TIMEOUT)
        assert texts(r) == ["192.0.2.44"]
        assert srv.stats["udp"] == 1 and srv.stats["tcp"] == 1


def test_thread_start_stop_is_clean() -> None:
    srv = DnsServerThread(Zone()).start()
    port = srv.port
    srv.stop()
    srv.stop()  # idempotent
    # the port is free again
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, port))


# --- the wire resolver against the server ------------------------------------------------------


def test_wire_resolver_matches_memory_resolver(zone: Zone, server: DnsServerThread) -> None:
    wire = WireResolver(HOST, server.port, timeout=OK_TIMEOUT)
    mem = MemoryResolver(zone)
    questions = [
        ("a.example", "A"),
        ("a.example", "AAAA"),
        ("a.example", "MX"),
        ("a.example", "TXT"),
        ("a.example", "SPF"),
        ("a.example", "NS"),
        ("www.example", "A"),
        ("www.example", "CNAME"),
        ("host.wild.example", "TXT"),
        ("3.2.0.192.in-addr.arpa", "PTR"),
        ("big.example", "TXT"),  # TC over UDP, then TCP
        ("a.example", "CNAME"),  # NODATA
        ("in-addr.arpa", "A"),  # empty non-terminal
    ]
    for name, rdtype in questions:
        assert wire.resolve(name, rdtype) == mem.resolve(name, rdtype), (name, rdtype)
    assert wire.resolve("a.example", "MX") == [(20, "mx2.example"), (10, "mx1.example")]
    assert wire.resolve("a.example", "TXT") == [("v=spf1 ", "ip4:192.0.2.0/24 ", "-all")]
    assert server.server.stats["truncated"] >= 1


def test_wire_resolver_errors(server: DnsServerThread) -> None:
    wire = WireResolver(HOST, server.port, timeout=OK_TIMEOUT)  # answers come: a generous deadline
    with pytest.raises(NXDomain):
        wire.resolve("nothing.example", "A")
    with pytest.raises(NXDomain):
        wire.resolve("dangling.example", "A")
    with pytest.raises(NXDomain):
        wire.resolve("x" * 64 + ".example", "A")  # cannot exist in the DNS
    with pytest.raises(DnsCnameLoop):
        wire.resolve("loop1.example", "A")
    with pytest.raises(DnsTimeout):
        WireResolver(HOST, server.port, timeout=1.0).resolve("slow.example", "TXT")  # no answer ever comes
    z = Zone([R("bad.example", "A", "192.0.2.1")])
    faults = (Fault(index=0, kind="dns_servfail", target="bad.example"),)
    with DnsServerThread(z, faults=faults) as srv, pytest.raises(DnsServFail):
        WireResolver(HOST, srv.port, timeout=OK_TIMEOUT).resolve("bad.example", "A")


def test_memory_resolver_errors(zone: Zone) -> None:
    mem = MemoryResolver(zone)
    with pytest.raises(NXDomain):
        mem.resolve("nothing.example", "A")
    with pytest.raises(DnsCnameLoop):
        mem.resolve("loop1.example", "TXT")
    with pytest.raises(DnsTimeout):
        mem.resolve("slow.example", "TXT")
    assert mem.resolve("a.example", "CNAME") == []
    with pytest.raises(ValueError):
        mem.resolve("a.example", "HINFO")


# --- dig ---------------------------------------------------------------------------------------

needs_dig = pytest.mark.requires_tool("dig")


def dig(srv: DnsServerThread, *args: str) -> str:
    cmd = ["dig", f"@{HOST}", "-p", str(srv.port), "+time=5", "+tries=1", *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


@needs_dig
def test_dig_udp_tcp_and_truncation(server: DnsServerThread) -> None:
    assert dig(server, "+short", "a.example", "A").split() == ["192.0.2.9", "192.0.2.1", "192.0.2.5"]
    assert dig(server, "+short", "+tcp", "a.example", "TXT").strip() == '"v=spf1 " "ip4:192.0.2.0/24 " "-all"'
    assert dig(server, "+short", "www.example", "A").split() == [
        "alias.example.",
        "a.example.",
        "192.0.2.9",
        "192.0.2.1",
        "192.0.2.5",
    ]
    full = dig(server, "+noedns", "big.example", "TXT")
    assert "Truncated, retrying in TCP mode" in full
    assert full.count('"0') == 8
    nx = dig(server, "nothing.example", "A")
    assert "status: NXDOMAIN" in nx and " aa" in nx.split("flags:")[1].split(";")[0]
    assert "SOA" in nx
    nodata = dig(server, "a.example", "CNAME")
    assert "status: NOERROR" in nodata and "ANSWER: 0" in nodata
    spf = dig(server, "+short", "a.example", "SPF")
    assert spf.strip() == '"v=spf1 -all"'


# --- CLI: mailsim dns serve --------------------------------------------------------------------


def test_cli_serve_answers_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    scenario = tmp_path / "scn.yaml"
    scenario.write_text(
        "schema: mailsim/1\n"
        "name: dns-serve\n"
        "start: 2026-11-02T09:00:00Z\n"
        "dns:\n"
        "  records:\n"
        '    - {name: acme.example, type: TXT, value: "v=spf1 include:spf.protection.outlook.com -all"}\n'
        "  unreachable: [slow.example]\n"
    )
    code = "from simulator.cli.dns_cmd import app; app()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "serve", str(scenario), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+) udp\+tcp\n", line)
        assert m is not None, line
        port = int(m.group(1))
        q = dns.message.make_query("acme.example", "TXT")
        assert texts(dns.query.udp(q, HOST, port=port, timeout=OK_TIMEOUT)) == [
            '"v=spf1 include:spf.protection.outlook.com -all"'
        ]
        # the provider's include record is published automatically (DESIGN §8)
        q2 = dns.message.make_query("spf.protection.outlook.com", "TXT")
        assert texts(dns.query.tcp(q2, HOST, port=port, timeout=OK_TIMEOUT)) == ['"v=spf1 ip4:203.0.113.20 -all"']
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert out == "stopped\n"
        assert "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_serve_rejects_non_loopback_and_bad_files(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from simulator.cli.dns_cmd import app

    scenario = tmp_path / "scn.yaml"
    scenario.write_text("schema: mailsim/1\nname: x\nstart: 2026-11-02T09:00:00Z\n")
    runner = CliRunner()
    res = runner.invoke(app, ["serve", str(scenario), "--host", "0.0.0.0"])
    assert res.exit_code == 2
    assert "loopback" in res.output
    scenario.write_text("schema: mailsim/1\nname: x\nstart: 2026-11-02T09:00:00Z\nbogus: 1\n")
    res = runner.invoke(app, ["serve", str(scenario)])
    assert res.exit_code == 2
    assert f"{scenario}:4:" in res.output


# --- DNS data as real DNS holds it (issue 11 items 16, 17) -----------------------------------


def test_odd_bytes_in_names_and_values_are_served_exactly() -> None:
    zone = Zone(
        [
            R(r"macro%percent\032\032space%20url-space.example", "TXT", r"ctrl\013\010 nul\000 hi\128\255 \\ end"),
            R(r"foo:bar/baz.example", "TXT", ("", "two")),
            R("null.example", "MX", "0 ."),
        ]
    )
    with DnsServerThread(zone) as srv:
        q = dns.message.make_query(dns.name.Name([b"macro%percent  space%20url-space", b"example", b""]), "TXT")
        msg = dns.query.udp(q, HOST, port=srv.port, timeout=OK_TIMEOUT)
        assert [rd.strings for rs in msg.answer for rd in rs] == [(b"ctrl\r\n nul\x00 hi\x80\xff \\ end",)]
        assert [rs.name.labels[0] for rs in msg.answer] == [b"macro%percent  space%20url-space"]
        assert [rd.strings for rs in udp(srv, "foo:bar/baz.example", "TXT").answer for rd in rs] == [(b"", b"two")]
        assert texts(udp(srv, "null.example", "MX")) == ["0 ."]
        # the resolvers hand SPF the same strings, decoded losslessly, both ways
        odd = "macro%percent  space%20url-space.example"
        wire = WireResolver(HOST, srv.port, timeout=OK_TIMEOUT).resolve(odd, "TXT")
    mem = MemoryResolver(zone).resolve(odd, "TXT")
    assert wire == mem == [("ctrl\r\n nul\x00 hi\udc80\udcff \\ end",)]


def _answer_size(srv: DnsServerThread, name: str) -> int:
    """Bytes of the whole answer with an EDNS OPT record (asked over TCP, where nothing is cut)."""
    q = dns.message.make_query(name, "TXT", use_edns=0, payload=4096)
    return len(dns.query.tcp(q, HOST, port=srv.port, timeout=OK_TIMEOUT).to_wire())


def test_udp_answers_are_capped_at_1232_bytes_whatever_the_client_offers() -> None:
    # find the TXT length whose answer is exactly 1,232 bytes, then probe 1,232 and 1,233
    def value(tail: int) -> tuple[str, ...]:
        return ("x" * 200,) * 5 + ("x" * tail,)  # explicit strings: size grows one byte per tail byte

    probe = Zone([R("edge.example", "TXT", value(100))])
    with DnsServerThread(probe) as srv:
        base = _answer_size(srv, "edge.example")
    tail = 100 + (1232 - base)
    zone = Zone([R("fits.example", "TXT", value(tail)), R("over.example", "TXT", value(tail + 1))])
    with DnsServerThread(zone) as srv:
        assert _answer_size(srv, "fits.example") == 1232
        assert _answer_size(srv, "over.example") == 1233
        for offer in (1232, 1500, 4096, 65535):
            fits = udp(srv, "fits.example", "TXT", use_edns=0, payload=offer)
            assert not fits.flags & dns.flags.TC
            assert len(fits.to_wire()) == 1232
            over = udp(srv, "over.example", "TXT", use_edns=0, payload=offer)
            assert over.flags & dns.flags.TC
            assert over.answer == []
        # a smaller offer is honoured, and no EDNS means 512
        assert udp(srv, "fits.example", "TXT", use_edns=0, payload=1231).flags & dns.flags.TC
        assert udp(srv, "fits.example", "TXT").flags & dns.flags.TC



def test_txt_near_the_65535_byte_limit_goes_over_tcp_and_agrees_with_memory(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # one record of 64,800 octets of strings: fits one TCP message, far too big for UDP
    big = "v=spf1 ip4:192.0.2.3 " + "x" * 64_000 + " -all"
    zone = Zone([R("big.example", "TXT", big), R("big.example", "A", "192.0.2.1")])
    with DnsServerThread(zone) as srv:
        assert udp(srv, "big.example", "TXT", use_edns=0, payload=4096).flags & dns.flags.TC
        whole = tcp(srv, "big.example", "TXT")
        assert b"".join(rd.strings[0] if len(rd.strings) == 1 else b"".join(rd.strings)
                        for rs in whole.answer for rd in rs) == big.encode()
        wire = WireResolver(HOST, srv.port, timeout=OK_TIMEOUT).resolve("big.example", "TXT")
        wire_spf = check_host("192.0.2.3", "big.example", "u@big.example", "h.example",
                              WireResolver(HOST, srv.port, timeout=OK_TIMEOUT))
    mem = MemoryResolver(zone).resolve("big.example", "TXT")
    assert wire == mem
    assert "".join(wire[0]) == big  # type: ignore[arg-type]
    mem_spf = check_host("192.0.2.3", "big.example", "u@big.example", "h.example", MemoryResolver(zone))
    assert wire_spf == mem_spf
    assert wire_spf.result == "permerror"  # 'xxx…' is not a term: the whole record is parsed first
    assert "DNS server failed" not in caplog.text


def test_a_65535_byte_txt_is_temperror_in_memory_and_wire(caplog: pytest.LogCaptureFixture) -> None:
    """The largest value DESIGN §8 allows cannot fit one DNS message with its 257 length octets.

    Before: the server logged a traceback and answered SERVFAIL while memory said permerror.
    """
    big = "v=spf1 -all " + "x" * (65_535 - 12)
    zone = Zone([R("max.example", "TXT", big), R("max.example", "A", "192.0.2.1")])
    mem = check_host("192.0.2.3", "max.example", "u@max.example", "h.example", MemoryResolver(zone))
    with DnsServerThread(zone) as srv:
        wire = check_host("192.0.2.3", "max.example", "u@max.example", "h.example",
                          WireResolver(HOST, srv.port, timeout=OK_TIMEOUT))
        assert tcp(srv, "max.example", "A").answer  # the name's other data is served as ever
    assert mem == wire
    assert (mem.result, mem.explanation) == ("temperror", "DNS SERVFAIL looking up TXT max.example")
    assert "DNS server failed" not in caplog.text


def test_an_answer_too_big_for_any_message_is_servfail_both_ways(caplog: pytest.LogCaptureFixture) -> None:
    # two records of ~40 kB each: each fits a message, together they cannot
    half = "v" + "x" * 40_000
    zone = Zone([R("huge.example", "TXT", half), R("huge.example", "TXT", half + "y"), R("one.example", "TXT", half)])
    with pytest.raises(DnsServFail):
        MemoryResolver(zone).resolve("huge.example", "TXT")
    with DnsServerThread(zone) as srv:
        with pytest.raises(DnsServFail):
            WireResolver(HOST, srv.port, timeout=OK_TIMEOUT).resolve("huge.example", "TXT")
        assert tcp(srv, "huge.example", "TXT").rcode() == dns.rcode.SERVFAIL
        assert len(WireResolver(HOST, srv.port, timeout=OK_TIMEOUT).resolve("one.example", "TXT")) == 1
    assert "DNS server failed" not in caplog.text


def test_unreachable_rules_exact_names_and_some_types() -> None:
    from simulator.domain.dns import Unreachable

    zone = Zone(
        [
            R("exact.example", "A", "192.0.2.1"),
            R("a.exact.example", "A", "192.0.2.2"),
            R("picky.example", "A", "192.0.2.3"),
        ],
        unreachable=[Unreachable("exact.example", subdomains=False), Unreachable("picky.example", ("TXT",))],
    )
    with DnsServerThread(zone) as srv:
        # a short deadline where no reply comes, a generous one where the answer is checked
        silent = WireResolver(HOST, srv.port, timeout=SILENCE)
        answering = WireResolver(HOST, srv.port, timeout=OK_TIMEOUT)
        for res, quiet in ((MemoryResolver(zone), MemoryResolver(zone)), (answering, silent)):
            with pytest.raises(DnsTimeout):
                quiet.resolve("exact.example", "A")
            assert res.resolve("a.exact.example", "A") == ["192.0.2.2"]
            assert res.resolve("picky.example", "A") == ["192.0.2.3"]
            with pytest.raises(DnsTimeout):
                quiet.resolve("picky.example", "TXT")
            with pytest.raises(DnsTimeout):
                quiet.resolve("x.picky.example", "TXT")


def test_memory_answers_are_kept_per_zone_version_and_only_without_dns_faults() -> None:
    """SPF asks the same questions for every sender: the memory resolver keeps an answer until the zone
    changes (every change bumps its version); an error is asked again; with DNS faults nothing is kept
    (a fault may answer differently at another time)."""
    zone = Zone([DnsRecord("a.example", "A", "192.0.2.1"), DnsRecord("a.example", "TXT", "v=spf1 -all")])
    mem = MemoryResolver(zone)
    first = mem.resolve("a.example", "A")
    first.append("mutated by a caller")
    assert mem.resolve("a.example", "A") == ["192.0.2.1"]  # a copy each time: the kept answer is intact
    zone.set("a.example", "A", "192.0.2.2")
    assert mem.resolve("a.example", "A") == ["192.0.2.2"]
    zone.delete("a.example", "A")
    assert mem.resolve("a.example", "A") == []
    with pytest.raises(NXDomain):
        mem.resolve("gone.example", "A")
    zone.set("gone.example", "A", "192.0.2.9")
    assert mem.resolve("gone.example", "A") == ["192.0.2.9"]
    zone.set_unreachable(["a.example"])
    with pytest.raises(DnsTimeout):
        mem.resolve("a.example", "TXT")
    # a timeout from the second minute: with a DNS fault the answer follows the clock, nothing is kept
    t = [0]
    faulty = MemoryResolver(Zone([DnsRecord("b.example", "A", "192.0.2.3")]), now=lambda: t[0],
                            faults=[Fault(index=0, kind="dns_timeout", target="b.example", at=60, for_=60)])
    assert faulty.resolve("b.example", "A") == ["192.0.2.3"]
    t[0] = 61
    with pytest.raises(DnsTimeout):
        faulty.resolve("b.example", "A")
