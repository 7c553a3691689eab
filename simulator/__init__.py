"""mailsim: an email delivery queue simulator for invoice emails.

The public Python API is small on purpose::

    import simulator
    result = simulator.run("scenarios/tour.yaml")      # or a Scenario object
    for inv in result.invoices(): ...
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator.engine.result import RunResult
    from simulator.scenario.model import Scenario


def load(path: str | Path) -> Scenario:
    """Load and validate a scenario file (raises ``ScenarioError`` with file:line:col)."""
    from simulator.scenario.loader import load_scenario

    return load_scenario(path)


def run(scenario: Scenario | str | Path, **kwargs: Any) -> RunResult:
    """Run a scenario (a file path or a loaded ``Scenario``) to its end; see ``engine.run.simulate``."""
    from simulator.engine.run import simulate

    scn = load(scenario) if isinstance(scenario, (str, Path)) else scenario
    return simulate(scn, **kwargs)


def __getattr__(name: str) -> Any:
    """``simulator.__version__``, read from the installed metadata only when asked (start-up time)."""
    if name == "__version__":
        from simulator.trace.writer import package_version

        return package_version()
    raise AttributeError(f"module 'simulator' has no attribute {name!r}")


__all__ = ["__version__", "load", "run"]
