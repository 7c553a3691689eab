"""What every sub-command does the same way: one-line errors with exit code 2, and loading a scenario."""

from __future__ import annotations

import os
import sys
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
