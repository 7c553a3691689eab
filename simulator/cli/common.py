"""What every sub-command does the same way: one-line errors with exit code 2, and loading a scenario."""

from __future__ import annotations

import difflib
import os
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
