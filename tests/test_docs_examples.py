"""The docs stand alone and their examples run as written.

- Every relative link in README.md and docs/*.md points at a file of the repository.
- No page refers to files outside it (the steering repository's DESIGN.md, the guide's source path).
- Every command of a ``sh``/``bash`` block, and every ``$ `` line of a ``console`` block, runs in a
  scratch folder that holds the checkout's ``scenarios/``, ``tests/``, ``docs/`` and ``.venv``, page by
  page in document order (a later command may read what an earlier one wrote). A block right after a
  line saying "Save this as `NAME`" is written to NAME first. A command must exit 0 or 1 (for mailsim,
  2 is bad input: the example is wrong), or a code its comment states ("exits 24"). Servers
  (``dns serve``, ``sink``, a command ending in ``&``) run in the background until ``kill %1`` or the
  end of the page. A tool that is not installed (dig, swaks) is skipped, and said so; ``make run`` and
  ``make test`` are not run (they are this suite).
- Every example in a ``--help`` text (``e.g. '…'``) runs against the tour.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers import CI, PROJECT_TOOLS

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMAND_TIMEOUT = 300  # seconds; the longest example (a chaos run of a few hundred runs) takes far less
SERVER_START = 30.0  # seconds a background server may take to say it is up (its first output line)
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_SAVE = re.compile(r"[Ss]ave (?:this|it) as `([^`]+)`")


def _id(p: Path) -> str:
    return str(p.relative_to(ROOT))


@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_links_point_inside_the_repository(page: Path) -> None:
    text = page.read_text()
    bad = []
    for target in _LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        if not path.exists() or ROOT not in path.parents:
            bad.append(target)
    assert not bad, f"{_id(page)} links to files not in the repository: {bad}"


@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_no_reference_to_files_outside_the_repository(page: Path) -> None:
    text = page.read_text()
    found = re.findall(r"DESIGN(?:\.md)?(?: §\d)?|\.\./shared|seed/invoice-email[\w./-]*", text)
    assert not found, f"{_id(page)} refers to files that are not in the repository: {found}"


@dataclass
class Example:
    line: int
    command: str
    exits: set[int] = field(default_factory=lambda: {0, 1})  # 0/1, or the codes "exits N" says


@dataclass
class Page:
    examples: list[Example] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)


def extract(page: Path) -> Page:
    """The page's runnable commands (continuations joined) and the files it asks to save."""
    text = page.read_text()
    out = Page()
    for m in _FENCE.finditer(text):
        lang, body = m.group(1), m.group(2)
        start = text.count("\n", 0, m.start()) + 2
        before = text[max(0, m.start() - 300):m.start()].strip().splitlines()[-1:]
        saved = _SAVE.search(before[0]) if before else None
        if saved:
            out.files[saved.group(1)] = body
            continue
        if lang in ("sh", "bash", "shell"):
            lines = [(start + i, ln) for i, ln in enumerate(body.splitlines())]
        elif lang in ("console", ""):
            lines = [(start + i, ln[2:]) for i, ln in enumerate(body.splitlines()) if ln.startswith("$ ")]
        else:
            continue
        pending = ""
        first = 0
        heredoc: str | None = None
        for no, ln in lines:
            if heredoc is not None:  # a here-document's lines belong to its command
                pending += ln + "\n"
                if ln.strip() == heredoc:
                    out.examples.append(Example(first, pending))
                    pending, first, heredoc = "", 0, None
                continue
            if not pending and (not ln.strip() or ln.lstrip().startswith("#")):
                said = re.search(r"\bexits? (\d+)", ln)
                if said and out.examples and ln.lstrip().startswith("#"):  # a comment on the command above
                    out.examples[-1].exits.add(int(said.group(1)))
                continue
            first = first or no
            if ln.rstrip().endswith("\\"):
                pending += ln.rstrip()[:-1] + " "
                continue
            here = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", ln)
            if here:
                pending += ln + "\n"
                heredoc = here.group(1)
                continue
            said = re.search(r"#.*\bexits? (\d+)", ln)
            out.examples.append(Example(first, pending + ln, {0, 1} | ({int(said.group(1))} if said else set())))
            pending, first = "", 0
    return out


def _words(command: str) -> list[str]:
    try:
        return shlex.split(command, comments=True)
    except ValueError:
        return command.split()


def _is_server(words: list[str]) -> bool:
    joined = " ".join(words)
    return bool(re.search(r"\bmailsim (dns serve|sink)\b", joined))


def _tool(words: list[str]) -> str:
    """The program a command line starts with (after VAR=value assignments)."""
    for w in words:
        if "=" in w.split("/")[0] and not w.startswith("-"):
            continue
        return Path(w).name
    return ""


def _mailsim_commands(command: str) -> bool:
    return bool(re.search(r"(^|[\s|;&(])(\.venv/bin/)?mailsim\s", command))


def _workspace(tmp: Path) -> Path:
    work = tmp / "work"
    work.mkdir()
    for name in ("scenarios", "tests", "docs"):
        (work / name).symlink_to(ROOT / name)
    (work / ".venv").symlink_to(BIN.parent)
    return work


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


RUNNABLE = [p for p in PAGES if extract(p).examples]


@pytest.mark.parametrize("page", RUNNABLE, ids=_id)
def test_examples_run_as_written(page: Path, tmp_path: Path) -> None:
    spec = extract(page)
    work = _workspace(tmp_path)
    for name, body in spec.files.items():
        (work / name).write_text(body)
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}", "COLUMNS": "120",
           "HOME": str(tmp_path)}
    servers: list[subprocess.Popen[bytes]] = []
    failures: list[str] = []
    skipped: list[str] = []
    try:
        for ex in spec.examples:
            command = ex.command.strip()
            words = _words(command)
            where = f"{_id(page)}:{ex.line}: {command}"
            if command.startswith("kill "):
                if servers:
                    _stop(servers.pop())
                continue
            if command.startswith("make "):  # the set-up commands are this very suite (and the venv)
                continue
            tool = _tool(words)
            if tool and tool not in ("cd", "echo", "printf") and shutil.which(tool, path=env["PATH"]) is None \
                    and not (work / tool).exists() and not tool.startswith("."):
                if CI and tool in PROJECT_TOOLS and PROJECT_TOOLS[tool][2]:
                    failures.append(f"{where}\n  CI=true and {tool} is missing (the project installs it)")
                else:
                    skipped.append(f"{where} ({tool} is not installed)")
                continue
            background = command.endswith("&") or _is_server(words)
            if background:
                logs = tmp_path / f"server-{ex.line}"
                with open(f"{logs}.out", "wb") as so, open(f"{logs}.err", "wb") as se:
                    proc = subprocess.Popen(["bash", "-c", command.rstrip("&").strip()], cwd=work, env=env,
                                            stdin=subprocess.DEVNULL, stdout=so, stderr=se, start_new_session=True)
                deadline = time.monotonic() + SERVER_START
                while proc.poll() is None and time.monotonic() < deadline and not any(
                        Path(f"{logs}{s}").stat().st_size for s in (".out", ".err")):
                    time.sleep(0.1)
                time.sleep(0.5)  # the line is printed as the listeners come up
                if proc.poll() is not None:
                    err = Path(f"{logs}.err").read_text(errors="replace")
                    failures.append(f"{where}\n  the server exited {proc.returncode}: {err.strip()[-500:]}")
                else:
                    servers.append(proc)
                continue
            r = subprocess.run(["bash", "-c", command], cwd=work, env=env, stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=COMMAND_TIMEOUT)
            if r.returncode not in ex.exits:
                err = r.stderr.decode(errors="replace").strip()[-800:]
                failures.append(f"{where}\n  exit {r.returncode}: {err}")
    finally:
        for proc in servers:
            _stop(proc)
    if skipped:
        print("skipped (tool missing):\n  " + "\n  ".join(skipped))
    assert not failures, "examples that do not run as written:\n" + "\n".join(failures)


def _help_examples() -> list[tuple[str, str, str]]:
    """(command, option, example) for every ``e.g. '…'`` in an option's help text."""
    from simulator.cli.main import command

    found: list[tuple[str, str, str]] = []

    def walk(cmd: object, path: str) -> None:
        for param in getattr(cmd, "params", []):
            text = getattr(param, "help", None) or ""
            for m in re.finditer(r"e\.g\. ((?:'[^']+'(?:,? or |, )?)+)", text):
                for example in re.findall(r"'([^']+)'", m.group(1)):
                    found.append((path, param.opts[0], example))
        for name, sub in (getattr(cmd, "commands", None) or {}).items():
            walk(sub, f"{path} {name}".strip())

    walk(command(), "")
    return found


def test_help_examples_run_as_written(tmp_path: Path) -> None:
    examples = _help_examples()
    assert ("sweep", "--vary", "users[nora].sync.last_login=-80d,-90d") in examples
    for path, option, example in examples:
        args = [*path.split(), "tour", option, example]
        if path == "sweep":
            args += ["--seeds", "1", "--workers", "1", "--out", str(tmp_path / f"{len(os.listdir(tmp_path))}.csv")]
        r = subprocess.run([str(BIN / "mailsim"), *args], cwd=tmp_path, capture_output=True, text=True,
                           timeout=COMMAND_TIMEOUT)
        assert r.returncode in (0, 1), f"mailsim {' '.join(args)}: exit {r.returncode}: {r.stderr}"
