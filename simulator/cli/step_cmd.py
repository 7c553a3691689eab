"""``mailsim step FILE``: step through a scenario's run — interactively, or from a command script.

Interactive (stdin and stdout are terminals, no ``--commands``): a full-screen view redrawn with
rich after every command, a ``step>`` prompt with readline history; fits 80×24.

Scripted (``--commands FILE``, or commands piped on stdin): plain text, no ANSI — the state
once at the start, then one block per command headed by its echo (``> next 5``), so a lesson or
a bug report is a readable, diffable transcript. Bad commands get a one-line ``hint:``; the
exit code is 0 unless the scenario itself cannot be loaded (2).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, TextIO

import typer
from rich.console import Console
from rich.text import Text

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

PROMPT = "step> "


@app.callback(invoke_without_command=True, context_settings={"allow_interspersed_args": True})
def step(
    file: Annotated[Path, typer.Argument(help="Scenario file (mailsim/1 YAML).")],
    commands: Annotated[Path | None, typer.Option("--commands", "-c",
                                                  help="Run the commands in this file (one a line), plain output."
                                                  )] = None,
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed (as run --seed).")] = None,
) -> None:
    """Step through a scenario's run: next, until, back, break, show, why, inject, save (type help)."""
    from simulator.replay.stepper import Stepper
    from simulator.scenario.errors import ScenarioError

    script: Iterable[str] | None = None
    if commands is not None:
        try:
            script = commands.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            sys.stderr.write(f"error: cannot read {commands}: {exc.strerror or exc}\n")
            raise typer.Exit(2) from None
    elif not sys.stdin.isatty():
        script = sys.stdin
    interactive = script is None and sys.stdout.isatty()
    console = Console(highlight=False) if interactive else None
    width, height = console.size if console is not None else (80, 24)
    try:
        st = Stepper(file, width=max(40, width), height=max(12, height), seed=seed)
    except ScenarioError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise typer.Exit(2) from None
    except OSError as exc:
        sys.stderr.write(f"error: cannot read {file}: {exc.strerror or exc}\n")
        raise typer.Exit(2) from None
    if console is None:
        run_script(st, script if script is not None else sys.stdin, sys.stdout)
    else:
        run_interactive(st, console)


def run_script(st: object, lines: Iterable[str], out: TextIO) -> int:
    """Plain transcript: the state, then ``> command`` and its output per command. Returns #hints."""
    from simulator.replay.stepper import Stepper

    assert isinstance(st, Stepper)

    def write(text: Text | str) -> None:
        out.write((text.plain if isinstance(text, Text) else text) + "\n")

    write(f"mailsim step {st.path}: {st.scn.name} (type help for commands)")
    for caption in st.sess.captions_between(-1, 0):  # a fault on all the run: its caption from the start
        write(f"caption: {caption.text}")
    for t in st.render_state():
        write(t)
    hints = 0
    for raw in lines:
        line = raw.rstrip("\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        write("")
        write(f"> {line.strip()}")
        reply = st.execute(line)
        for t in reply.lines:
            write(("hint: " if reply.error and not t.plain.startswith(("warning", "internal")) else "") + t.plain)
        hints += reply.error
        if reply.quit:
            break
        if reply.state:
            for t in st.render_state():
                write(t)
    out.flush()
    return hints


def run_interactive(st: object, console: Console) -> None:
    from simulator.replay.stepper import Reply, Stepper

    assert isinstance(st, Stepper)
    with contextlib.suppress(ImportError):  # line editing and history for input()
        import readline  # noqa: F401
    reply = Reply(state=True).add(Text(f"{st.scn.name}: type help for commands, quit to leave; Enter redraws",
                                       style="dim"))
    for caption in st.sess.captions_between(-1, 0):
        reply.add(f"caption: {caption.text}", "bold yellow")
    while True:
        width, height = console.size
        st.width, st.height = max(40, width), max(12, height)
        msg: list[Text] = []
        for t in reply.lines:
            msg.extend(t.wrap(console, st.width))
        state = st.render_state(rows=height - 1 - min(len(msg), 4)) if reply.state or len(msg) <= 4 else []
        room = height - 1 - len(state)
        if len(msg) > room:
            cut = len(msg) - room + 1
            msg = [*msg[: room - 1], Text(f"… {cut} more lines (scripted mode prints them all: --commands)",
                                          style="dim")]
        console.clear()
        for t in state:
            console.print(t, no_wrap=True, overflow="ellipsis", crop=True)
        for t in msg:
            console.print(t, no_wrap=True, overflow="ellipsis", crop=True)
        try:
            line = input(PROMPT)
        except EOFError:
            break
        except KeyboardInterrupt:
            reply = Reply(state=True).add("(quit or Ctrl-D to leave)", "dim")
            continue
        reply = st.execute(line)
        if reply.quit:
            break
        if not line.strip():
            reply.state = True
    console.print()


if __name__ == "__main__":  # pragma: no cover - ``python -m simulator.cli.step_cmd``
    app()
