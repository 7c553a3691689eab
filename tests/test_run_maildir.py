"""``mailsim run FILE --maildir DIR``: every stored copy as a Maildir file, the same in memory and wire runs.

Readers outside mailsim must open what it writes: Python's ``mailbox.Maildir`` reads every file back,
and each DSN is recognised by flufl.bounce (the bounce detector of GNU Mailman) as a permanent failure
of exactly the recipients that bounced.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import flufl.bounce as flufl_bounce
import pytest

from simulator.engine.result import RunResult
from simulator.engine.run import simulate
from simulator.net.sink import mailbox_dirname
from simulator.scenario.loader import load_scenario
from simulator.transport.keep import keeping_transport
from simulator.transport.wire import WireTransport

ROOT = Path(__file__).resolve().parent.parent
MAILSIM = [sys.executable, "-m", "simulator.cli.main"]
# inbox, junk, and every kind of bounce: 5xx at RCPT and after DATA, SPF reject, retries exhausted,
# no MX; plus a slow reply (its copy is stored at the 250, not when the transaction starts)
CASES = [
    "scenarios/tour.yaml",
    "scenarios/after-sending-remote-permfail.yaml",
    "scenarios/after-sending-retries-exhausted.yaml",
    "scenarios/after-sending-spf-fail-rejected.yaml",
    "scenarios/after-sending-spf-softfail-junk.yaml",
    "scenarios/after-sending-mx-lookup-failed.yaml",
    "scenarios/after-sending-message-too-big.yaml",
    "tests/data/chaos/slow-reply-stored-before-delivered.yaml",
]
_ORIGINAL_ID = re.compile(rb"^Message-ID: (<[^>\r\n]+>)", re.MULTILINE)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _run(case: str, root: Path, wire: bool) -> RunResult:
    scn = load_scenario(ROOT / case)
    factory = (lambda engine: WireTransport(engine, maildir=root)) if wire else keeping_transport(root)
    return simulate(scn, transport=factory)


@pytest.mark.parametrize("case", CASES, ids=lambda c: Path(c).stem)
def test_memory_and_wire_write_the_same_files(case: str, tmp_path: Path) -> None:
    mem, wire = tmp_path / "memory", tmp_path / "wire"
    result = _run(case, mem, wire=False)
    _run(case, wire, wire=True)
    got = _files(mem)
    assert got, f"{case}: nothing stored"
    assert got == _files(wire)
    # one file per stored copy, where the sink puts it: DIR/<address>/new, junk in DIR/<address>/.Junk/new
    expected = Counter(
        f"{mailbox_dirname(addr)}/{'.Junk/' if folder == 'junk' else ''}new" for addr, folder, _, _ in result.stored()
    )
    assert Counter(str(Path(name).parent) for name in got) == expected


@pytest.mark.parametrize("case", CASES, ids=lambda c: Path(c).stem)
def test_every_file_reads_back_and_every_dsn_is_a_permanent_failure(case: str, tmp_path: Path) -> None:
    result = _run(case, tmp_path, wire=False)
    bounced: dict[str, set[bytes]] = {}  # original message id -> the recipients that bounced
    for v in result.invoices():
        for r in v.recipients:
            if r.outcome == "bounced":
                bounced.setdefault(f"<{v.id}@mailsim.invalid>", set()).add(r.email.strip().lower().encode())
    boxes = result.mailboxes()
    dsns_seen = 0
    for address, counts in boxes.items():
        folder = tmp_path / mailbox_dirname(address)
        if not folder.exists():
            assert counts == {"inbox": 0, "junk": 0, "bounces": 0}
            continue
        md = mailbox.Maildir(folder, factory=None, create=False)
        msgs = [md.get_message(k) for k in md.keys()]  # noqa: SIM118 - Maildir has no iteration of keys alone
        junk = md.get_folder("Junk") if "Junk" in md.list_folders() else None
        junk_msgs = [junk.get_message(k) for k in junk.keys()] if junk is not None else []  # noqa: SIM118
        dsns = [m for m in msgs if m["Return-Path"] == "<>"]
        assert (len(msgs) - len(dsns), len(junk_msgs), len(dsns)) == (counts["inbox"], counts["junk"],
                                                                       counts["bounces"]), address
        for m in [*msgs, *junk_msgs]:
            assert m["Return-Path"] and m["Message-ID"]
        for m in dsns:
            raw = m.as_bytes()
            original = _ORIGINAL_ID.findall(raw)
            assert original, "the DSN quotes the original message's headers"
            parsed = email.message_from_bytes(raw, policy=email.policy.compat32)
            temporary, permanent = flufl_bounce.all_failures(parsed)
            assert set(permanent) == bounced[original[-1].decode()]
            assert not temporary
            dsns_seen += 1
    assert dsns_seen == sum(c["bounces"] for c in boxes.values())
    assert (dsns_seen > 0) == bool(bounced)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MAILSIM, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("transport", ["memory", "wire"])
def test_cli_run_maildir(transport: str, tmp_path: Path) -> None:
    out = tmp_path / "mail"
    r = _cli("run", str(ROOT / "scenarios/after-sending-remote-permfail.yaml"), "--transport", transport,
             "--maildir", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == ["billing@greenacre.example/new/3600.M5fbeab5d81452bc0.mx.mailsim.test"]


def test_cli_maildir_must_be_new_or_empty(tmp_path: Path) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "old").write_text("x")
    (tmp_path / "file").write_text("x")
    for target, why in (("used", "not empty"), ("file", "not a directory")):
        r = _cli("run", "tour", "--maildir", str(tmp_path / target), cwd=tmp_path)
        assert r.returncode == 2
        assert r.stderr.startswith("error: --maildir ") and why in r.stderr
        assert r.stderr.count("\n") == 1
