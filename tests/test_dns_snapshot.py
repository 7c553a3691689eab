"""``mailsim dns snapshot`` against ``mailsim dns serve`` on loopback (never a server off the machine).

The snapshot must be a valid ``mailsim/1`` file (the project's loader reads it)
and ``spf check`` on it must say exactly what ``spf check`` says on the live data.
"""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simulator.cli.dns_cmd import app as dns_app
from simulator.cli.spf_cmd import app as spf_app
from simulator.cli.spf_cmd import evaluate
from simulator.domain.dns import Unreachable
from simulator.net.snapshot import parse_server
from simulator.net.zone import Zone
from simulator.scenario.loader import load_scenario

LIVE = r"""schema: mailsim/1
name: live
start: 2026-11-02T09:00:00Z
dns:
  records:
    - {name: acme.example, type: TXT, value: "v=spf1 include:spf.protection.outlook.com include:_spf.acme.example
        a mx ip4:198.51.100.10 exists:%{i}.rbl.example -all exp=why.acme.example"}
    - {name: acme.example, type: MX, value: "10 mx1.acme.example"}
    - {name: acme.example, type: MX, value: "20 mx2.acme.example"}
    - {name: acme.example, type: A, value: 192.0.2.80}
    - {name: mx1.acme.example, type: A, value: 192.0.2.25}
    - {name: mx2.acme.example, type: AAAA, value: "2001:db8::25"}
    - {name: _spf.acme.example, type: TXT, value: ["v=spf1 ip4:203.0.113.0/24 ", "redirect=_spf2.acme.example"]}
    - {name: _spf2.acme.example, type: CNAME, value: real-spf.example}
    - {name: real-spf.example, type: TXT, value: 'v=spf1 ip6:2001:db8::/32 ?all'}
    - {name: why.acme.example, type: TXT, value: "%{i} may not send for %{d}"}
    - {name: odd.example, type: TXT, value: 'v=spf1 a:c.example\013ptr -all'}
    - {name: broken.example, type: TXT, value: "v=spf1 include:slow.example -all"}
    - {name: slow.example, type: TXT, value: "v=spf1 +all"}
    - {name: unrelated.example, type: TXT, value: "v=spf1 +all"}
    - {name: macro.example, type: TXT, value: "v=spf1 exists:%{ir}.%{v}._spf.%{d} ptr:ptr-ok.example -all
        exp=%{l}.never.example"}
    - {name: 77.2.0.192.in-addr._spf.macro.example, type: A, value: 127.0.0.2}
    - {name: 44.100.51.198.in-addr.arpa, type: PTR, value: mta.ptr-ok.example}
    - {name: mta.ptr-ok.example, type: A, value: 198.51.100.44}
  unreachable: [slow.example]
"""
MACRO_NAMES = ("macro.example", "ptr-ok.example", "in-addr.arpa")

IPS = ["198.51.100.10", "203.0.113.20", "203.0.113.30", "203.0.113.7", "2001:db8::1", "192.0.2.80", "192.0.2.25",
       "2001:db8::25", "192.0.2.99"]
SENDERS = ["billing@acme.example", "x@broken.example", "y@odd.example", "z@nowhere.example"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    """``mailsim dns serve LIVE`` in a subprocess; yields the file and its port."""
    live = tmp_path_factory.mktemp("live") / "live.yaml"
    live.write_text(LIVE)
    code = "from simulator.cli.dns_cmd import app; app()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "serve", str(live), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+) udp\+tcp\n", line)
        assert m is not None, line
        yield live, int(m.group(1))
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def snap(served: tuple[Path, int], tmp_path_factory: pytest.TempPathFactory) -> Path:
    _live, port = served
    out = tmp_path_factory.mktemp("snap") / "acme-snapshot.yaml"
    res = CliRunner().invoke(
        dns_app,
        ["snapshot", "acme.example", "broken.example", "odd.example",
         "--server", f"127.0.0.1:{port}", "--out", str(out), "--timeout", "2.5"],
    )
    assert res.exit_code == 0, res.output
    assert res.output == f"wrote {out}\n"
    return out


def test_snapshot_is_a_valid_scenario_with_what_was_served(snap: Path, served: tuple[Path, int]) -> None:
    text = snap.read_text()
    lines = text.splitlines()
    assert lines[0] == "# mailsim dns snapshot of acme.example broken.example odd.example"
    assert re.fullmatch(r"# taken \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ from 127\.0\.0\.1:\d+ \(\d+ questions\)", lines[1])
    assert "# not followed (depends on the connection): 'exists:%{i}.rbl.example' in acme.example" in lines
    scn = load_scenario(snap)
    got = {(r.name, r.type, r.value) for r in scn.dns.records}
    live = {(r.name, r.type, r.value) for r in load_scenario(served[0]).dns.records}
    # everything captured is what the live zone holds (the provider record is the live
    # server's automatic one), byte for byte in presentation form
    assert got - live == {("spf.protection.outlook.com", "TXT", "v=spf1 ip4:203.0.113.20 -all")}
    # everything SPF or delivery of the three names can reach was captured; nothing else
    assert {r for r in live - got if not r[0].endswith(MACRO_NAMES)} == {
        ("slow.example", "TXT", "v=spf1 +all"),  # it never answered
        ("unrelated.example", "TXT", "v=spf1 +all"),
    }
    assert ("odd.example", "TXT", r"v=spf1 a:c.example\013ptr -all") in got
    assert ("_spf2.acme.example", "CNAME", "real-spf.example") in got
    assert scn.dns.unreachable_rules == (Unreachable("slow.example", ("TXT",), False),)


def test_spf_check_on_the_snapshot_equals_the_live_data(snap: Path, served: tuple[Path, int]) -> None:
    live_zone = Zone.from_scenario(load_scenario(served[0]))
    snap_zone = Zone.from_scenario(load_scenario(snap))
    checked = 0
    for ip in IPS:
        for sender in SENDERS:
            live = evaluate(live_zone, ip, sender, "h.example", wire=False)
            assert evaluate(snap_zone, ip, sender, "h.example", wire=False) == live, (ip, sender)
            checked += 1
    assert checked == 36
    # and over the wire, through the CLI, for the interesting ones
    for ip, sender, result in [
        ("2001:db8::1", "billing@acme.example", "pass"),
        ("192.0.2.99", "billing@acme.example", "fail"),
        ("192.0.2.99", "x@broken.example", "temperror"),
        ("192.0.2.99", "y@odd.example", "permerror"),
    ]:
        args = ["check", "--ip", ip, "--sender", sender, "--helo", "h.example", "--wire", "--timeout", "3"]
        outs = [CliRunner().invoke(spf_app, [args[0], str(f), *args[1:]]).output for f in (served[0], snap)]
        assert outs[0] == outs[1]
        assert outs[0].startswith(result + ": ")


def test_client_ips_let_ptr_and_address_macros_be_followed(served: tuple[Path, int], tmp_path: Path) -> None:
    live_file, port = served
    ips = ["192.0.2.77", "198.51.100.44", "192.0.2.99"]
    out = tmp_path / "macro.yaml"
    args = ["snapshot", "macro.example", "--server", f"127.0.0.1:{port}", "--out", str(out)]
    res = CliRunner().invoke(dns_app, [*args, *[a for ip in ips for a in ("--ip", ip)]])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert text.startswith("# mailsim dns snapshot of macro.example for clients 192.0.2.77 198.51.100.44 192.0.2.99\n")
    assert "# not followed (depends on the connection): 'exp=' in macro.example\n" in text
    assert "ptr" not in "".join(line for line in text.splitlines() if line.startswith("# not followed"))
    live, snap = (Zone.from_scenario(load_scenario(f)) for f in (live_file, out))
    results = []
    for ip in ips:
        want = evaluate(live, ip, "u@macro.example", "h.example", wire=False)
        assert evaluate(snap, ip, "u@macro.example", "h.example", wire=False) == want
        results.append(want.result)
    assert results == ["pass", "pass", "fail"]
    # without the client IPs those names cannot be known: the snapshot then says so
    bare = CliRunner().invoke(dns_app, ["snapshot", "macro.example", "--server", f"127.0.0.1:{port}"]).output
    assert "# not followed (depends on the connection): 'ptr:ptr-ok.example' in macro.example" in bare
    assert "in-addr._spf" not in bare.split("schema:")[1]


def test_snapshot_to_stdout_and_bad_input(served: tuple[Path, int], tmp_path: Path) -> None:
    _live, port = served
    idn = CliRunner().invoke(dns_app, ["snapshot", "Bücher.example", "--server", f"127.0.0.1:{port}"])
    assert idn.exit_code == 0
    assert idn.output.startswith("# mailsim dns snapshot of xn--bcher-kva.example\n")
    res = CliRunner().invoke(dns_app, ["snapshot", "REAL-SPF.example.", "--server", f"127.0.0.1:{port}"])
    assert res.exit_code == 0
    assert '    - {name: "real-spf.example", type: TXT, value: "v=spf1 ip6:2001:db8::/32 ?all"}\n' in res.output
    for args, message in [
        (["a..example"], "error: NAME 'a..example': empty label"),
        (["acme.example", "--server", "dns.example"], "error: --server: expected an IP address"),
        (["acme.example", "--server", "127.0.0.1:0"], "error: --server: port must be 1..65535"),
        (["acme.example", "--timeout", "0"], "error: --timeout must be 0.05..60 seconds"),
        (["acme.example", "--ip", "1.2.3"], "error: --ip: '1.2.3' is not an IPv4 or IPv6 address"),
        (["acme.example", "--server", f"127.0.0.1:{port}", "--out", str(tmp_path / "no" / "x.yaml")],
         "error: --out"),
    ]:
        bad = CliRunner().invoke(dns_app, ["snapshot", *args])
        assert bad.exit_code == 2, args
        assert bad.output.startswith(message), bad.output
        assert "Traceback" not in bad.output


def test_parse_server() -> None:
    assert parse_server("192.0.2.53") == ("192.0.2.53", 53)
    assert parse_server("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_server("[::1]:5353") == ("::1", 5353)
    assert parse_server("::1") == ("::1", 53)
    with pytest.raises(ValueError):
        parse_server("[::1]x")


def test_docs_step3_example_runs_as_written(tmp_path: Path) -> None:
    """docs/spf.md's snapshot transcript: serve the demo file, snapshot it, check the guide's step 3 IPs."""
    doc = (Path(__file__).parent.parent / "docs" / "spf.md").read_text(encoding="utf-8")
    demo = re.search(r"Save this as `spf-demo.yaml`:\n\n```yaml\n(.*?)```", doc, re.DOTALL)
    assert demo is not None
    (tmp_path / "spf-demo.yaml").write_text(demo.group(1))
    # only the practice transcript: the first example asks the system resolver (the internet)
    section = doc[doc.index("To try it without touching the internet") :]
    lines = section.splitlines()
    code = "from simulator.cli.dns_cmd import app; app()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "serve", str(tmp_path / "spf-demo.yaml"), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        m = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+) udp\+tcp\n", proc.stdout.readline())
        assert m is not None
        ran = 0
        for i, line in enumerate(lines):
            if not line.startswith(("$ mailsim dns snapshot ", "$ mailsim spf check ")):
                continue
            args = shlex.split(line[len("$ mailsim ") :])
            assert args[0] != "dns" or "--server" in args  # never a server off the machine
            args = [a.replace("127.0.0.1:5353", f"127.0.0.1:{m.group(1)}") for a in args]
            args = [str(tmp_path / a) if a.endswith(".yaml") else a for a in args]
            app = dns_app if args[0] == "dns" else spf_app
            res = CliRunner().invoke(app, args[1:])
            assert res.exit_code == 0, res.output
            want = lines[i + 1].replace("acme-snapshot.yaml", str(tmp_path / "acme-snapshot.yaml"))
            assert res.output == want + "\n", line
            ran += 1
        assert ran == 4
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
