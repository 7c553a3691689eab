"""One call from a Scenario to a RunResult: the public entry the CLI and notebooks use."""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path

from simulator.engine.result import ExpectationResult, RunResult, evaluate, record_watched
from simulator.engine.sim import Engine, TransportFactory
from simulator.engine.state import compiled as compiled  # public: which build runs (`mailsim --version`)
from simulator.scenario.model import Expectation, Scenario
from simulator.trace.writer import TraceWriter


def simulate(
    scn: Scenario,
    *,
    trace: str | Path | None = None,
    transport: TransportFactory | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RunResult:
    """Run ``scn`` to its end and check its expectations.

    Expectations with a time are checked when the clock reaches it (after
    everything else scheduled then); the rest at the end.
    """
    fh = open(trace, "wb") if trace is not None else None  # noqa: SIM115 - closed below
    # Millions of long-lived objects and no cycles worth collecting mid-run: the cyclic
    # GC would rescan them all on every generation-2 pass, so pause it for the run.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        writer = TraceWriter(fh, scn) if fh is not None else None
        eng = Engine(scn, trace=writer, transport=transport, progress=progress)
        results: dict[int, ExpectationResult] = {}

        def checker(x: Expectation) -> Callable[[], None]:
            def check() -> None:
                results[x.index] = evaluate(eng, x, eng.now)

            return check

        for x in scn.expect:
            if x.never is not None and x.invoice is not None:
                eng.watch[(x.invoice, x.recipient)] = set()
        if eng.watch:
            eng.watcher = lambda: record_watched(eng)
        eng.setup()
        for x in scn.expect:
            if x.when is not None:
                eng.call_at(max(0, x.when), eng.PRIO_CHECK, checker(x))
        end = eng.run()
        for x in scn.expect:
            if x.index not in results:
                results[x.index] = evaluate(eng, x, end)
        eng.transport.close()
        out = RunResult(eng, end, [results[x.index] for x in scn.expect], final=True)
        if writer is not None:
            acc = out.accounting()
            writer.emit(end, "run.end", {"accounting": acc, "expectations_ok": out.ok})
            writer.flush()
        return out
    finally:
        if gc_was_enabled:
            gc.enable()
        if fh is not None:
            fh.close()
