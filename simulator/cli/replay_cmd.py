"""``mailsim replay TRACE``: re-run the trace's scenario and check the new trace is byte-identical.

Exit 0 identical, 1 diverged (the first differing line, both versions and a
key-level diff), 2 bad input (not a trace, missing or changed scenario).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from simulator.cli.common import output_file

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, subcommand_metavar="",
                  context_settings={"allow_interspersed_args": True})


def _say(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _pretty(obj: Any, raw: bytes | None, indent: str = "    ") -> str:
    if raw is None:
        return f"{indent}(no line: the file ended)"
    if obj is None:
        return indent + raw.rstrip(b"\r\n").decode("utf-8", errors="replace")
    text = orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode()
    return "\n".join(indent + line for line in text.splitlines())


@app.callback(invoke_without_command=True)
def replay(
    trace: Annotated[Path, typer.Argument(metavar="TRACE", help="A JSONL trace written by `mailsim run --trace`.")],
    scenario: Annotated[Path | None, typer.Option(
        help="The scenario file (default: the header's scenario_path); its sha256 must match.")] = None,
    out: Annotated[Path | None, typer.Option(help="Keep the replayed trace here.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Re-run the scenario named in TRACE's header and report whether the new trace is byte-identical."""
    from simulator.replay.replay import TraceInputError
    from simulator.replay.replay import replay as do_replay

    out = output_file(out, "--out")
    try:
        res = do_replay(trace, scenario, out=out)
    except TraceInputError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise typer.Exit(2) from None
    if json_out:
        sys.stdout.buffer.write(orjson.dumps(res.to_json(), option=orjson.OPT_INDENT_2) + b"\n")
        raise typer.Exit(res.exit_code)
    h = res.header
    _say(f"replay {trace}: scenario {h['scenario']} ({res.scenario.source}, sha256 {str(h['scenario_sha256'])[:12]}…),"
         f" seed {res.scenario.seed}")
    for note in res.notes:
        _say(f"  note: {note}")
    d = res.divergence
    if d is None:
        _say(f"identical: {res.events} events, byte for byte")
        raise typer.Exit(0)
    where = f"line {d.line}" + (f" (seq {d.seq})" if d.seq is not None else "") + (f", {d.at}" if d.at else "")
    _say(f"DIVERGED at {where}: {d.explanation}")
    _say(f"  recorded ({trace}):")
    _say(_pretty(d.recorded_obj, d.recorded))
    _say("  replayed:")
    _say(_pretty(d.replayed_obj, d.replayed))
    changes = d.changes
    if changes:
        _say("  changes (recorded → replayed):")
        for c in changes:
            _say("    " + c.render("recorded", "replayed"))
    _say(f"recorded {res.events} events, replayed {res.replayed_events}")
    raise typer.Exit(1)


if __name__ == "__main__":  # pragma: no cover
    app()
