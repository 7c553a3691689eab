"""Small scenario builders shared by the engine and CLI tests, and the one way a test asks for a tool."""

from __future__ import annotations

import ast
import importlib.util
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable
from textwrap import dedent, indent
from typing import NoReturn

import pytest

from simulator.engine.result import RunResult
from simulator.engine.run import simulate
from simulator.scenario.loader import load_scenario_text
from simulator.scenario.model import Scenario

BASE = """\
schema: mailsim/1
name: {name}
start: 2026-11-02T09:00:00Z
seed: 3
{extra}
organization:
  configuration: {{invoice_email_from: ar@acme.example}}
  branches: [{{id: b1}}, {{id: b2}}]
users:
{users}
contacts:
  - {{id: c1, email: jane@client.example}}
  - {{id: c2, email: bob@client.example}}
properties:
  - {{id: p1, branch: b1, contacts: [{{contact: c1, email_invoice: true}}]}}
  - {{id: p2, branch: b2, contacts: [{{contact: c2, email_invoice: true}}]}}
batches:
{batches}
dns:
  records:
    - {{name: acme.example, type: TXT, value: "{spf}"}}
    - {{name: client.example, type: MX, value: "10 mx.client.example"}}
    - {{name: mx.client.example, type: A, value: 192.0.2.25}}
mailboxes:
{mailboxes}
timeline:
{timeline}
"""

SYNCED_USER = "  - {id: u1, email: ar@acme.example, sync: {provider: microsoft365, synced: -10d}}"


def scenario(
    *,
    name: str = "t",
    users: str = SYNCED_USER,
    batches: str = "  - {id: B1, invoices: [{id: INV-1, property: p1}]}",
    timeline: str = "  - {at: +1h, complete_batch: B1}",
    mailboxes: str = "  - {domain: client.example}",
    spf: str = "v=spf1 include:spf.protection.outlook.com ip4:198.51.100.10 -all",
    extra: str = "",
) -> Scenario:
    text = BASE.format(name=name, users=users, batches=batches, timeline=timeline, mailboxes=mailboxes, spf=spf,
                       extra=dedent(extra).strip())
    return load_scenario_text(text, path=f"<{name}>")


def run(**kw: str) -> RunResult:
    return simulate(scenario(**kw))


def block(text: str, spaces: int = 2) -> str:
    return indent(dedent(text).strip("\n"), " " * spaces)


def wait_until(check: Callable[[], bool], polls: int = 600, pause: float = 0.05) -> bool:
    """Poll a bounded number of times (no wall-clock assertion): for tests that watch another process."""
    for _ in range(polls):
        if check():
            return True
        time.sleep(pause)
    return check()


# --- tools the project installs: a skip locally, a failure in CI ------------------------------------

#: Under ``CI=true`` (.ci/run sets it; CI runs set it anyway) everything the project installs is there,
#: so a test that would skip for want of it fails instead: a broken install step cannot turn green.
CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


def _program(*names: str) -> Callable[[], str | None]:
    def probe() -> str | None:
        return next((p for p in map(shutil.which, names) if p), None)

    return probe


def _module(name: str) -> Callable[[], str | None]:
    def probe() -> str | None:
        spec = importlib.util.find_spec(name)
        return None if spec is None else spec.origin or name

    return probe


def _libyaml() -> str | None:
    import simulator.scenario.yamltree as yamltree

    return "yaml.CParser" if yamltree._LibyamlParser is not None else None


def hot_modules() -> list[str]:
    """setup.py's ``HOT_MODULES`` (the compiled engine) as module names: read, since importing setup.py runs setup()."""
    setup_py = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "setup.py")
    with open(setup_py, encoding="utf-8") as fh:
        tree = ast.parse(fh.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "HOT_MODULES"
                                                for t in node.targets):
            return [p.removesuffix(".py").replace("/", ".") for p in ast.literal_eval(node.value)]
    raise AssertionError("setup.py has no HOT_MODULES")


def _compiled_build() -> str | None:
    """Where ``make compiled`` unpacked the compiled engine, when it did (the benchmarks' own check)."""
    from benchmarks.varied_bench import COMPILED, compiled_available

    return str(COMPILED) if compiled_available() else None


def _atheris_wheel_exists() -> bool:
    """PyPI has atheris wheels for Linux x86_64 only; elsewhere it builds from source against a
    libFuzzer-enabled clang, which the Makefile does not attempt (it installs ``--only-binary``)."""
    return sys.platform == "linux" and platform.machine() in ("x86_64", "AMD64")


#: name -> (probe returning where it is or None, who installs it, required under CI here?)
PROJECT_TOOLS: dict[str, tuple[Callable[[], str | None], str, bool]] = {
    "chromium": (_program("chromium", "chromium-browser"), "Debian package chromium, by .ci/run", True),
    "tmux": (_program("tmux"), "Debian package tmux, by .ci/run", True),
    "swaks": (_program("swaks"), "Debian package swaks, by .ci/run", True),
    "dig": (_program("dig"), "Debian package dnsutils, by .ci/run", True),
    "libyaml": (_libyaml, "PyPI wheel of pyyaml (a dependency), which bundles libyaml", True),
    "mailsim-compiled": (_compiled_build, "the Makefile (`make compiled`, which `make test` runs first)", True),
    "atheris": (_module("atheris"), "the Makefile, from PyPI where a wheel exists", _atheris_wheel_exists()),
}


def missing(reason: str, *, required: bool = True) -> NoReturn:
    """Skip locally; under CI=true fail when the project itself installs what is missing."""
    if CI and required:
        pytest.fail(f"CI=true and {reason}: the project installs it, so a skip here would hide a broken install",
                    pytrace=False)
    pytest.skip(reason)


def find_tool(name: str) -> str | None:
    probe, _source, _required = PROJECT_TOOLS[name]
    return probe()


def need_tool(name: str) -> str:
    """Where ``name`` is (a path for programs); skip when it is missing, or fail under CI=true."""
    probe, source, required = PROJECT_TOOLS[name]
    found = probe()
    if found is None:
        missing(f"{name} is not available (installed from the {source})", required=required)
    return found
