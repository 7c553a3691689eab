"""``mailsim examples``: the example scenarios that ship inside the package.

An installed mailsim has no checkout to point at, so the scenarios of the
project's ``scenarios/`` folder travel in the wheel as ``simulator/examples``
(in a checkout that name is a link to the folder, so there is one copy). Every
command that takes a scenario FILE also accepts an example's bare name
(``mailsim run tour``): ``simulator.cli.common.scenario_file`` resolves it.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from simulator.cli.common import SUFFIX, console, example_names, examples_dir, fail

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=False)


def _summary(path: Path) -> str:
    """The first sentence of the example's ``description:`` (the listing's second column)."""
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return ""
    text = " ".join(str(doc.get("description") or "").split()) if isinstance(doc, dict) else ""
    head, dot, _ = text.partition(". ")
    return head + ("." if dot else "")


@app.callback(invoke_without_command=True)
def examples(ctx: typer.Context) -> None:
    """List the bundled example scenarios; run one by name (mailsim run tour) or copy them all out."""
    if ctx.invoked_subcommand is not None:
        return
    names = example_names()
    if not names:
        raise fail("no bundled examples found (the package was installed without its data files)")
    out = console(soft_wrap=False, width=120)
    width = max(len(n) for n in names) + 2
    for n in names:
        out.print(f"{n:<{width}}{_summary(examples_dir() / f'{n}{SUFFIX}')}", overflow="ellipsis", no_wrap=True)
    out.print(f"\n{len(names)} examples. Run one with `mailsim run NAME`; `mailsim examples copy DIR` writes them"
              " out to edit.", soft_wrap=True)


@app.command()
def copy(
    dest: Annotated[Path, typer.Argument(metavar="DIR", help="Folder to write the .yaml files into (created).")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that already exist there.")] = False,
) -> None:
    """Write every bundled example scenario into DIR as NAME.yaml."""
    names = example_names()
    if not names:
        raise fail("no bundled examples found (the package was installed without its data files)")
    if dest.exists() and not dest.is_dir():
        raise fail(f"{dest}: not a directory")
    targets = [(examples_dir() / f"{n}{SUFFIX}", dest / f"{n}{SUFFIX}") for n in names]
    clash = [t for _, t in targets if t.exists()]
    if clash and not force:
        raise fail(f"{clash[0]} exists ({len(clash)} of the files do); pass --force to overwrite them")
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for src, target in targets:
            shutil.copyfile(src, target)
    except OSError as exc:
        raise fail(f"{dest}: {exc.strerror or exc}") from None
    sys.stdout.write(f"wrote {len(targets)} example scenarios to {dest}\n")
