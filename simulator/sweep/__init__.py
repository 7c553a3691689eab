"""Sweeps: many runs of one scenario over a grid of parameter values and seeds (``mailsim sweep``).

    from simulator.sweep import run_sweep
    rows = run_sweep("scenarios/tour.yaml", ["users[nora].sync.last_login=-60d,-100d"], seeds=10)
"""

from simulator.sweep.sweep import plan, run_sweep, summarize

__all__ = ["plan", "run_sweep", "summarize"]
