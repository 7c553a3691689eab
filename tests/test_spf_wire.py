"""Wire-mode SPF must equal memory-mode SPF: same result, same explanation, same counts.

Every case of spf_cases.py is evaluated twice — through ``MemoryResolver`` and
through ``WireResolver`` talking UDP/TCP to the loopback DNS server serving the
same zone — and the two ``SpfResult`` values must be identical.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

try:
    from tests.spf_cases import CASES, SpfCase, assert_case
except ImportError:  # tests/ is not a package: pytest put it on sys.path
    from spf_cases import CASES, SpfCase, assert_case  # type: ignore[no-redef]

from simulator.cli.spf_cmd import app as spf_app
from simulator.domain.dns import DnsRecord
from simulator.net.dns_server import DnsServerThread
from simulator.net.resolver import MemoryResolver, WireResolver
from simulator.net.spf import SpfResult, check_mail_from
from simulator.net.zone import Zone

# Only results are compared, so the deadlines are generous: a loaded machine must not turn a
# slow loopback reply into temperror (issue 16 item 6). Where nothing answers (the cases with
# unreachable names) the deadline must pass, so those cases run concurrently, each with its own
# server: together they cost about one deadline.
ANSWERED_TIMEOUT = 30.0
UNANSWERED_TIMEOUT = 6.0
SLOW_CASES = [c for c in CASES if c.unreachable]


@pytest.fixture(scope="module")
def server() -> Iterator[DnsServerThread]:
    with DnsServerThread(Zone()) as srv:
        yield srv


@pytest.fixture(scope="module")
def unanswered_results() -> dict[str, SpfResult]:
    def run(case: SpfCase) -> tuple[str, SpfResult]:
        with DnsServerThread(case.zone()) as srv:
            resolver = WireResolver("127.0.0.1", srv.port, timeout=UNANSWERED_TIMEOUT)
            return case.id, check_mail_from(case.ip, case.sender, case.helo, resolver, now=case.now)

    with ThreadPoolExecutor(max_workers=len(SLOW_CASES)) as pool:
        return dict(pool.map(run, SLOW_CASES))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case_wire_equals_memory(
    case: SpfCase, server: DnsServerThread, unanswered_results: dict[str, SpfResult]
) -> None:
    zone = case.zone()
    mem = check_mail_from(case.ip, case.sender, case.helo, MemoryResolver(zone), now=case.now)
    if case.unreachable:
        wire = unanswered_results[case.id]
    else:
        server.server.zone = zone
        resolver = WireResolver("127.0.0.1", server.port, timeout=ANSWERED_TIMEOUT)
        wire = check_mail_from(case.ip, case.sender, case.helo, resolver, now=case.now)
    assert wire == mem
    assert_case(case, wire)


_NAMES = st.sampled_from(
    ["example.com", "h.example.com", "i.example.com", "3.2.0.192.in-addr.arpa", "*.w.example.com", "l.example.com"]
)
_TERMS = st.sampled_from(
    [
        "-all",
        "~all",
        "a",
        "a/24",
        "mx",
        "ptr",
        "ptr:example.com",
        "include:i.example.com",
        "exists:%{i}.w.example.com",
        "a:l.example.com",
        "redirect=i.example.com",
        "exp=h.example.com",
        "ip4:192.0.2.0/30",
    ]
)
_RR = st.one_of(
    st.tuples(_NAMES, st.just("TXT"), st.lists(_TERMS, max_size=6).map(lambda t: " ".join(["v=spf1", *t]))),
    st.tuples(_NAMES, st.just("TXT"), st.sampled_from(["explained %{d}", "other"])),
    st.tuples(_NAMES, st.just("A"), st.sampled_from(["192.0.2.3", "192.0.2.7"])),
    st.tuples(_NAMES, st.just("MX"), st.sampled_from(["10 h.example.com", "20 l.example.com", "0 ."])),
    st.tuples(_NAMES, st.just("PTR"), st.sampled_from(["h.example.com", "l.example.com"])),
    st.tuples(
        st.sampled_from(["l.example.com", "h.example.com"]),
        st.just("CNAME"),
        st.sampled_from(["l.example.com", "h.example.com", "i.example.com"]),
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(_RR, max_size=8), ip=st.sampled_from(["192.0.2.3", "2001:db8::cb01"]))
def test_random_zones_wire_equals_memory(server: DnsServerThread, records: list[tuple[str, str, str]], ip: str) -> None:
    zone = Zone([DnsRecord(n, t, v) for n, t, v in records])
    server.server.zone = zone
    mem = check_mail_from(ip, "u@example.com", "h.example.com", MemoryResolver(zone))
    resolver = WireResolver("127.0.0.1", server.port, timeout=ANSWERED_TIMEOUT)  # nothing is unreachable here
    wire = check_mail_from(ip, "u@example.com", "h.example.com", resolver)
    assert wire == mem


def test_cli_wire_equals_memory(tmp_path: Path) -> None:
    scenario = tmp_path / "scn.yaml"
    scenario.write_text(
        "schema: mailsim/1\n"
        "name: spf-wire-cli\n"
        "start: 2026-11-02T09:00:00Z\n"
        "dns:\n"
        "  records:\n"
        '    - {name: acme.example, type: TXT, value: "v=spf1 include:_spf.google.com mx -all exp=e.acme.example"}\n'
        '    - {name: acme.example, type: MX, value: "10 mx.acme.example"}\n'
        "    - {name: mx.acme.example, type: A, value: 192.0.2.25}\n"
        '    - {name: e.acme.example, type: TXT, value: "%{i} is not %{d}"}\n'
    )
    runner = CliRunner()
    for ip in ("203.0.113.30", "192.0.2.25", "192.0.2.26"):
        args = ["check", str(scenario), "--ip", ip, "--sender", "b@acme.example", "--helo", "h.example", "--json"]
        mem = json.loads(runner.invoke(spf_app, args).output)
        wired = runner.invoke(spf_app, [*args, "--wire", "--timeout", "30"])  # every name answers
        assert wired.exit_code == 0
        wire = json.loads(wired.output)
        assert wire.pop("transport") == "wire"
        assert mem.pop("transport") == "memory"
        assert wire == mem
    assert mem["result"] == "fail"
    assert mem["exp"] == "192.0.2.26 is not acme.example"
