"""What every sub-command does the same way: one-line errors with exit code 2, and loading a scenario."""

from __future__ import annotations

import codecs
import difflib
import os
import socket
import stat
import sys
from importlib import resources
from pathlib import Path

import typer
from rich.console import Console

from simulator.scenario.model import Scenario


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` on stderr; the caller raises the returned exit (code 2: bad input)."""
    sys.stderr.write(f"error: {message}\n")
    return typer.Exit(2)


def load_or_exit(path: Path) -> Scenario:
    """The scenario at ``path``, or exit 2 with its ``file:line:col: message``."""
    from simulator.scenario.loader import ScenarioError, load_scenario

    try:
        return load_scenario(path)
    except ScenarioError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"{path}: {exc.strerror or exc}") from None


def console(*, stderr: bool = False, soft_wrap: bool = False, width: int = 160) -> Console:
    """A plain-text console: no markup (paths and ``users[u1]`` print as written), and a fixed width
    when the stream is not a terminal (unless ``COLUMNS`` says otherwise), so piped output is stable."""
    tty = sys.stderr.isatty() if stderr else sys.stdout.isatty()
    fixed = None if tty or os.environ.get("COLUMNS") else width
    return Console(stderr=stderr, highlight=False, soft_wrap=soft_wrap, width=fixed, markup=False)


# --- scenario FILE arguments: a path, or the bare name of a bundled example ---------------------------
# (``simulator/examples`` is the project's ``scenarios/`` folder: a link in a checkout, package data in
# a wheel). main.py hands every FILE-like parameter's value to :func:`scenario_file` as it is parsed.
SUFFIX = ".yaml"


def examples_dir() -> Path:
    """The folder holding the bundled examples (inside the installed package, or the checkout's link)."""
    return Path(str(resources.files("simulator") / "examples"))


def example_names() -> list[str]:
    """Every bundled example's name (its file name without ``.yaml``), sorted."""
    d = examples_dir()
    if not d.is_dir():
        return []
    return sorted(p.name[: -len(SUFFIX)] for p in d.iterdir() if p.name.endswith(SUFFIX) and p.is_file())


def example_path(name: str) -> Path | None:
    """The bundled example called ``name`` (``tour`` or ``tour.yaml``), or None."""
    stem = name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name
    if not stem or "/" in stem or "\\" in stem or stem.startswith("."):
        return None
    p = examples_dir() / f"{stem}{SUFFIX}"
    return p if p.is_file() else None


def scenario_file(value: Path) -> Path:
    """What a FILE argument names: the path itself when it exists or has a folder part, else the bundled
    example of that name (``tour``); a bare name that is neither exits 2 with the examples it resembles,
    and anything else is left for the loader to report (``file:1:1: cannot read the file``)."""
    text = str(value)
    if value.exists() or os.sep in text or "/" in text:
        return value
    found = example_path(text)
    if found is not None:
        return found
    stem = text[: -len(SUFFIX)] if text.endswith(SUFFIX) else text
    near = difflib.get_close_matches(stem, example_names(), n=3, cutoff=0.6)
    if near:
        hint = " or ".join(repr(n) for n in near)
        raise fail(f"{text}: no such file, and no bundled example of that name; did you mean {hint}?"
                   " (`mailsim examples` lists them)")
    return value


# --- option values checked before any work starts (DESIGN §5: bad input exits 2, never 3) --------------
DASK_SCHEMES = ("tcp", "tls")
DASK_PROBE_SECONDS = 5.0
_DEV_FULL = (1, 7)  # Linux's /dev/full: every write fails with ENOSPC


def output_file(path: Path | None, option: str) -> Path | None:
    """``path`` if a file can be written there, else exit 2 naming ``option`` — before the run,
    not after it (a directory, a missing folder, a read-only place, ``/dev/full``). ``-`` passes."""
    if path is None or str(path) == "-":
        return path
    where = f"{option} {path}"
    if path.is_dir():
        raise fail(f"{where}: is a directory")
    parent = path.parent
    if not parent.is_dir():
        raise fail(f"{where}: no such folder {str(parent)!r}")
    if path.exists():
        st = path.stat()
        if stat.S_ISCHR(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == _DEV_FULL:
            raise fail(f"{where}: no space left on device")
        if not os.access(path, os.W_OK):
            raise fail(f"{where}: permission denied")
    elif not os.access(parent, os.W_OK | os.X_OK):
        raise fail(f"{where}: the folder is not writable")
    return path


def directory(path: Path, option: str) -> Path:
    """``path`` if it is, or can become, a writable folder; else exit 2 naming ``option``."""
    where = f"{option} {path}"
    if path.exists() and not path.is_dir():
        raise fail(f"{where}: not a folder")
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise fail(f"{where}: {str(probe)!r} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise fail(f"{where}: permission denied")
    return path


def port(value: int, option: str) -> int:
    """A TCP port (0: any free one)."""
    if not 0 <= value <= 65535:
        raise fail(f"{option} must be a port number from 0 to 65535, got {value}")
    return value


def positive(value: float, option: str, unit: str = "seconds") -> float:
    """A strictly positive amount (a timeout of 0 would drop every connection at once)."""
    if not value > 0 or value != value or value == float("inf"):
        raise fail(f"{option} must be more than 0 {unit}, got {value:g}")
    return value


def dask_address(value: str | None, option: str = "--dask") -> str | None:
    """``local`` or a reachable scheduler (``tcp://HOST:PORT``); anything else exits 2 now, not
    after the client's 30-second connect timeout ends in an internal error."""
    if value is None or value == "local":
        return value
    scheme, sep, rest = value.partition("://")
    host, colon, port_text = rest.rpartition(":")
    host = host.strip("[]")
    if not sep or scheme not in DASK_SCHEMES or not colon or not host or not port_text.isdigit():
        raise fail(f"{option} {value!r}: expected a scheduler address such as tcp://127.0.0.1:8786, or 'local'")
    try:
        socket.create_connection((host, int(port_text)), timeout=DASK_PROBE_SECONDS).close()
    except (OSError, ValueError, OverflowError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise fail(f"{option} {value}: cannot reach the scheduler ({reason})") from None
    return value


def text_file(path: Path, option: str) -> Path:
    """``path`` holds UTF-8 text (no NUL byte): what ``--resume`` can read back; else exit 2."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                if b"\x00" in chunk:
                    raise UnicodeDecodeError("utf-8", chunk, chunk.index(b"\x00"), chunk.index(b"\x00") + 1, "NUL")
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise fail(f"{option} {path}: not a text file (binary data); use another {option} or --force") from None
    except OSError as exc:
        raise fail(f"{option} {path}: {exc.strerror or exc}") from None
    return path
