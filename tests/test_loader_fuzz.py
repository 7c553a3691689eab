"""Fuzzing the loader: every file in scenarios/ mutated at random gives a Scenario or a located error.

DESIGN §8: "Randomly mutated scenario files give exit 0, 1 or 2; when 2, the message has a
location; never a traceback." Three fuzzers hold the loader to it, each bounded by a count of
inputs (never by time), so ``make test`` does the same work on every machine:

- hypothesis mutates the shipped scenarios byte- and line-wise and inserts YAML tokens
  (aliases, anchors, merge keys, brackets, tabs, NUL, huge numbers, odd Unicode), derandomized
  so a failure reproduces;
- a handful of mutated files go through ``mailsim validate`` end to end (exit 0 or 2, no traceback);
- atheris (coverage-guided libFuzzer; installed by the Makefile only where a wheel exists) runs
  ``tests/fuzz/fuzz_loader.py`` in a subprocess for a fixed number of runs from a fixed seed.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import simulator.scenario.yamltree as yamltree
from simulator.scenario.errors import ScenarioError
from simulator.scenario.loader import load_scenario_text
from simulator.scenario.model import Scenario

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
TEXTS = [p.read_text(encoding="utf-8") for p in SCENARIOS]
MAILSIM = Path(sys.executable).with_name("mailsim")
HARNESS = ROOT / "tests" / "fuzz" / "fuzz_loader.py"

TOKENS = (
    "*a", "&a ", "*a\n", "&a [", "<<: ", "<<: *a", "<<: [*a, *a]", "[", "]", "{", "}", ": ", ":", "- ", "? ",
    ", ", "\t", "\x00", "\x01", "\x1b", "\x7f", "\r", "\n", "\n  ", "#", "'", '"', "|", ">", "!", "!!int ",
    "!!str ", "!!map ", "!!binary ", "!x ", "%YAML 1.2\n", "---\n", "...\n", "~", "null", "true", "yes",
    "9" * 45, "-" + "9" * 400, "1e999", "-.inf", ".nan", "0x", "0o8", "1_000", "+1h", "-95d", "end", "+99999999999w",
    "2026-13-45T99:99:99Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59", "\\e", '"\\e"', '"\\0"',
    '"\\ud800"', "é", "ß", "\u0130", "\u2028", "\u2029", "\x85", "\ufeff", "\u200b", "😀", "\U0010ffff",
    "count: ", "at: ", "id: ", "invoices: ", "properties: ", "timeline: ", "expect: ", "faults: ",
    "{count: 5000001, properties: [p1]}", "[" * 70, "{a: " * 70, "- " * 70,
)  # fmt: skip

OPS = ("flip", "delete", "duplicate", "swap", "insert", "insert", "truncate", "repeat")


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A shipped scenario after 1-6 random edits."""
    text = draw(st.sampled_from(TEXTS))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(OPS))
        if op == "flip":  # a byte of the UTF-8 text
            data = bytearray(text.encode("utf-8", errors="surrogateescape"))
            if data:
                data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
            text = data.decode("utf-8", errors=draw(st.sampled_from(["replace", "surrogateescape", "ignore"])))
        elif op == "delete":
            a = draw(st.integers(0, len(text)))
            text = text[:a] + text[a + draw(st.integers(0, 40)) :]
        elif op in ("duplicate", "swap", "repeat"):
            lines = text.split("\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            if op == "duplicate":
                lines.insert(j, lines[i])
            elif op == "swap":
                lines[i], lines[j] = lines[j], lines[i]
            else:  # a line many times over (lists grow, keys repeat)
                lines[i:i] = [lines[i]] * draw(st.integers(2, 200))
            text = "\n".join(lines)
        elif op == "insert":
            at = draw(st.integers(0, len(text)))
            token = draw(st.sampled_from(TOKENS) | st.text(min_size=1, max_size=4))
            text = text[:at] + token + text[at:]
        else:  # truncate
            text = text[: draw(st.integers(0, len(text)))]
    return text


def check(text: str) -> None:
    """The loader's whole contract on one input."""
    try:
        result = load_scenario_text(text, "m.yaml")
    except ScenarioError as e:
        assert str(e) == f"m.yaml:{e.line}:{e.column}: {e.message}"
        assert 1 <= e.line <= len(text.splitlines()) + 1, str(e)
        assert e.column >= 1, str(e)
        assert e.message and len(e.message) < 4000, str(e)[:4000]  # never the input echoed at length
    else:
        assert isinstance(result, Scenario)


def test_the_seeds_load() -> None:
    assert len(TEXTS) >= 30
    for text in TEXTS:
        assert isinstance(load_scenario_text(text, "m.yaml"), Scenario)


@settings(
    max_examples=2500,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutated())
def test_mutated_scenarios_give_scenario_or_located_error(text: str) -> None:
    check(text)


@pytest.mark.requires_tool("libyaml")
@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutated())
def test_mutated_scenarios_with_the_ruamel_parser(text: str) -> None:
    """The fallback parser (no PyYAML) keeps the same contract."""
    old = yamltree.BACKEND
    yamltree.BACKEND = "ruamel"
    try:
        check(text)
    finally:
        yamltree.BACKEND = old


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    """Plain-random mutations for the end-to-end runs (bytes, so invalid UTF-8 reaches the CLI)."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.choice(("flip", "delete", "insert", "duplicate"))
        at = rng.randrange(len(out) + 1)
        if op == "flip" and out:
            out[min(at, len(out) - 1)] = rng.randrange(256)
        elif op == "delete":
            del out[at : at + rng.randint(1, 30)]
        elif op == "insert":
            out[at:at] = rng.choice(TOKENS).encode("utf-8", errors="surrogatepass")
        else:
            end = out.find(b"\n", at)
            start = out.rfind(b"\n", 0, at) + 1
            if end > start:
                out[start:start] = out[start : end + 1] * rng.randint(1, 3)
    return bytes(out)


def test_mailsim_validate_on_mutated_files(tmp_path: Path) -> None:
    rng = random.Random(6)
    outcomes = set()
    for k in range(8):
        source = SCENARIOS[rng.randrange(len(SCENARIOS))]
        path = tmp_path / f"mutant-{k}.yaml"
        path.write_bytes(mutate_bytes(source.read_bytes(), rng) if k else source.read_bytes())
        proc = subprocess.run(
            [str(MAILSIM), "validate", str(path)], capture_output=True, text=True, errors="replace", check=False
        )
        assert proc.returncode in (0, 2), (path.read_bytes()[:2000], proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
        if proc.returncode == 2:
            assert f"{path}:" in proc.stderr + proc.stdout, proc.stderr
        outcomes.add(proc.returncode)
    assert 0 in outcomes  # the unmutated first file validates


@pytest.mark.requires_tool("atheris")
def test_atheris_fuzzes_the_loader_for_a_fixed_number_of_runs(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"  # libFuzzer adds what it finds to the first corpus directory
    corpus.mkdir()
    for p in SCENARIOS:
        shutil.copy(p, corpus / p.name)
    proc = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            str(corpus),
            "-runs=4000",
            "-seed=1",
            "-max_len=16384",
            "-timeout=120",
            "-rss_limit_mb=4096",
            f"-artifact_prefix={tmp_path}/",
        ],
        capture_output=True,
        text=True,
        errors="replace",
        cwd=ROOT,
        check=False,
    )
    crashes = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-")))
    assert proc.returncode == 0 and not crashes, proc.stderr[-5000:]
