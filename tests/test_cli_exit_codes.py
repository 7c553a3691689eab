"""Bad option values exit 2 with one ``error:`` line naming the option, never 3 (issue 13 item 10).

DESIGN §5: exit 3 is for bugs only; an output path that cannot be written, a port out of range, an
unreachable Dask address or an unreadable ``--resume`` file is bad input. Each case runs the
installed entry point once and is bounded by a subprocess timeout.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAILSIM = Path(sys.executable).with_name("mailsim")
TOUR = ROOT / "scenarios" / "tour.yaml"
TIMEOUT = 300  # bounds a hung case only


def mailsim(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(MAILSIM), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=TIMEOUT)


def _closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bad(p: subprocess.CompletedProcess[str], option: str) -> None:
    assert p.returncode == 2, (p.returncode, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and option in lines[0], p.stderr
    assert "Traceback" not in p.stderr and "internal error" not in p.stderr


@pytest.mark.parametrize("option", ["--trace", "--junit"])
@pytest.mark.parametrize("where", ["dir", "missing", "full"])
def test_run_output_paths(tmp_path: Path, option: str, where: str) -> None:
    target = {"dir": tmp_path, "missing": tmp_path / "no" / "such" / "out.txt", "full": Path("/dev/full")}[where]
    if where == "full" and not target.exists():
        pytest.skip("no /dev/full here")
    _bad(mailsim("run", TOUR, option, target), option)


def test_sweep_out_is_a_directory(tmp_path: Path) -> None:
    _bad(mailsim("sweep", TOUR, "--vary", "settings.queue_poll=1m", "--workers", "1", "--out", tmp_path), "--out")


def test_replay_out_in_a_missing_folder(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    assert mailsim("run", TOUR, "--trace", trace).returncode == 0
    _bad(mailsim("replay", trace, "--out", tmp_path / "missing" / "r.jsonl"), "--out")


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:{port}", "http://x"])
def test_sweep_dask_address(address: str) -> None:
    value = address.format(port=_closed_port())
    _bad(mailsim("sweep", TOUR, "--vary", "settings.queue_poll=1m", "--dask", value), "--dask")


def test_sweep_resume_on_a_binary_file(tmp_path: Path) -> None:
    out = tmp_path / "rows.csv"
    out.write_bytes(b"\x00\xff\xfe binary \x89PNG\r\n")
    _bad(mailsim("sweep", TOUR, "--vary", "settings.queue_poll=1m", "--workers", "1", "--out", out, "--resume"),
         "--out")


@pytest.mark.parametrize(("args", "option"), [
    (["--port", "70000"], "--port"),
    (["--proxy-port", "-1"], "--proxy-port"),
    (["--timeout", "0"], "--timeout"),
    (["--timeout", "-5"], "--timeout"),
    (["--max-recipients", "5"], "--max-recipients"),
    (["--maildir", "FILE"], "--maildir"),
])
def test_sink_option_values(tmp_path: Path, args: list[str], option: str) -> None:
    if "FILE" in args:
        f = tmp_path / "a-file"
        f.write_text("not a folder")
        args = [str(f) if a == "FILE" else a for a in args]
    _bad(mailsim("sink", *args), option)


def test_sink_sigterm_prints_the_summary_even_for_a_non_utf8_recipient(tmp_path: Path) -> None:
    """Issue 13 item 6: the summary always comes out, and the exit is clean."""
    secret = tmp_path / "secret"
    proc = subprocess.Popen([str(MAILSIM), "sink", "--maildir", str(tmp_path / "mail"),
                             "--proxy-secret-file", str(secret)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().decode()
        port = int(first.split()[3].rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), 30) as c:
            f = c.makefile("rb")
            assert f.readline().startswith(b"220")
            for line in (b"HELO h.test", b"MAIL FROM:<a@x.example>", b"RCPT TO:<\xff@x.example>", b"DATA"):
                c.sendall(line + b"\r\n")
                while (reply := f.readline())[3:4] == b"-":
                    pass
                assert reply[:1] in (b"2", b"3"), reply
            c.sendall(b"Subject: s\r\n\r\nhi\r\n.\r\n")
            assert f.readline().startswith(b"250 ")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(TIMEOUT)
    assert proc.returncode == 0, err
    text = out.decode()
    doc = json.loads(text[text.index("{"):])
    assert doc["messages"] == 1 and list(doc["mailboxes"]) == ["\\xff@x.example"]
    assert os.stat(secret).st_mode & 0o777 == 0o600 and len(secret.read_bytes()) == 32
