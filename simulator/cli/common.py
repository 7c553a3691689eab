"""What every sub-command does the same way: one-line errors with exit code 2, and loading a scenario."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

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
