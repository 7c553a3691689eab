"""``mailsim schema``: the JSON Schema of the scenario format, for editors.

Save it next to the scenarios and point the YAML language server at it (docs/scenario-format.md,
"Editor support"); it is generated from the loader's key tables on every call, so it always
matches the installed mailsim.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from simulator.cli.common import fail

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=False)


@app.callback(invoke_without_command=True)
def schema(
    out: Annotated[
        Path | None, typer.Option("--out", metavar="FILE", help="Write the schema to FILE instead of printing it.")
    ] = None,
) -> None:
    """Print the JSON Schema (draft 2020-12) of mailsim/1 scenario files, for editors' YAML support."""
    from simulator.scenario.schema import schema_text

    text = schema_text()
    if out is None:
        sys.stdout.write(text)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as e:
        raise fail(f"--out: cannot write {out}: {e.strerror or e}") from None
