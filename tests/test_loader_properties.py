"""Mutated scenario files give a Scenario or a located ScenarioError — never another exception.

DESIGN §8: "Randomly mutated scenario files give exit 0, 1 or 2; when 2, the message has a
location; never a traceback." These properties hold the loader to that.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.domain.events import EVENT_KINDS
from simulator.scenario.errors import ScenarioError
from simulator.scenario.loader import load_scenario, load_scenario_text
from simulator.scenario.model import Scenario

DATA = Path(__file__).parent / "data"
SEED_TEXT = (DATA / "design_example.yaml").read_text(encoding="utf-8")

# a second, block-style seed so mutations also hit indentation-sensitive YAML
BLOCK_TEXT = """\
schema: mailsim/1
name: block-style
start: 2026-11-02T09:00:00Z
settings:
  retry_schedule:
    - 5m
    - 1h
organization:
  configuration:
    invoice_email_from: billing@acme.example
    invoice_recipients: [email_invoice, billing]
  branches:
    - id: b1
users:
  - id: u1
    email: billing@acme.example
    sync:
      provider: google
      synced: -10d
contacts:
  - id: c1
    email: jane@client.example
properties:
  - id: p1
    branch: b1
    contacts:
      - contact: c1
        email_invoice: true
batches:
  - id: B1
    invoices:
      count: 250
      properties: [p1]
timeline:
  - at: +1h
    complete_batch: B1
  - at: +2h
    set_property_contact:
      property: p1
      contact: c1
      billing: true
faults:
  - kind: slow
    delay: 30s
    stage: data
expect:
  - invoice: B1-001
    email_status: Sent
    at: +3h
  - count:
      outcome: inbox
    equals: 250
"""

SEEDS = (SEED_TEXT, BLOCK_TEXT)
PATH = "m.yaml"
LOCATED = re.compile(r"^m\.yaml:(\d+):(\d+): \S")

KEYS = sorted(
    {
        *re.findall(r"([a-z_]+):", SEED_TEXT),
        *re.findall(r"([a-z_]+):", BLOCK_TEXT),
        *EVENT_KINDS,
    }
)
VALUES = [
    "",
    "null",
    "~",
    "yes",
    "true",
    "0",
    "-1",
    "1e999",
    ".nan",
    "9" * 50,
    "[]",
    "{}",
    "[a, [b]]",
    "{x: 1}",
    "'quoted'",
    '"\\u0000"',
    "*nope",
    "&a x",
    "!!int x",
    "!custom x",
    "2026-11-02",
    "2026-11-02T09:00:00",
    "+2h",
    "-95d",
    "end",
    "5m",
    "u1",
    "B1",
    "INV-1",
    "p1",
    "c1",
    "b1",
    "north",
    "In Queue",
    "inbox",
    "TXT",
    "MX",
    "10 mx.client.example",
    "192.0.2.1",
    "::1",
    "<<",
    "|",
    ">-",
    "- x",
    "? x",
    "%TAG",
    "---",
    "@",
    "`",
]


def check(text: str) -> None:
    try:
        result = load_scenario_text(text, PATH)
    except ScenarioError as e:
        m = LOCATED.match(str(e))
        assert m is not None, str(e)
        line, col = int(m.group(1)), int(m.group(2))
        assert 1 <= line <= text.count("\n") + 2 and col >= 1, str(e)
        assert (e.line, e.column) == (line, col)
    else:
        assert isinstance(result, Scenario)
        hash(result.settings)  # frozen, fully built


def _lines(text: str) -> list[str]:
    return text.split("\n")


@st.composite
def mutated_text(draw: st.DrawFn) -> str:
    lines = _lines(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["delete", "duplicate", "rename", "value", "swap", "indent", "insert", "truncate"]))
        i = draw(st.integers(0, len(lines) - 1))
        line = lines[i]
        if op == "delete" and len(lines) > 1:
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, line)
        elif op == "rename":
            keys = list(re.finditer(r"[a-z_]+(?=:)", line))
            if keys:
                k = draw(st.sampled_from(keys))
                new = draw(st.one_of(st.sampled_from(KEYS), st.text("abcdefghijklmnopqrstuvwxyz_", max_size=12)))
                lines[i] = line[: k.start()] + new + line[k.end() :]
        elif op == "value":
            values = list(re.finditer(r"(?<=: )[^,{}\[\]\n#]+", line))
            if values:
                v = draw(st.sampled_from(values))
                lines[i] = line[: v.start()] + draw(st.sampled_from(VALUES)) + line[v.end() :]
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            a = list(re.finditer(r"(?<=: )[^,{}\[\]\n#]+", lines[i]))
            b = list(re.finditer(r"(?<=: )[^,{}\[\]\n#]+", lines[j]))
            if a and b and i != j:
                va, vb = draw(st.sampled_from(a)), draw(st.sampled_from(b))
                ta, tb = va.group(0), vb.group(0)
                lines[i] = lines[i][: va.start()] + tb + lines[i][va.end() :]
                lines[j] = lines[j][: vb.start()] + ta + lines[j][vb.end() :]
        elif op == "indent":
            delta = draw(st.sampled_from([-2, -1, 1, 2]))
            lines[i] = line[-delta:] if delta < 0 else " " * delta + line
        elif op == "insert":
            key = draw(st.sampled_from(KEYS))
            value = draw(st.sampled_from(VALUES))
            indent = len(line) - len(line.lstrip(" "))
            lines.insert(i, " " * indent + f"{key}: {value}")
        elif op == "truncate":
            cut = draw(st.integers(0, len(line)))
            lines[i] = line[:cut]
    return "\n".join(lines)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_text())
def test_mutated_lines_give_scenario_or_located_error(text: str) -> None:
    check(text)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=4),
)
def test_byte_flips_give_scenario_or_located_error(seed: str, flips: list[tuple[float, int]]) -> None:
    data = bytearray(seed.encode("utf-8"))
    for where, byte in flips:
        data[int(where * len(data))] = byte
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / PATH
        path.write_bytes(bytes(data))
        try:
            result = load_scenario(path)
        except ScenarioError as e:
            assert str(e).startswith(f"{path}:{e.line}:{e.column}: "), str(e)
            assert e.line >= 1 and e.column >= 1
        else:
            assert isinstance(result, Scenario)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_arbitrary_text_gives_located_error(text: str) -> None:
    check(text)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(KEYS),
        st.recursive(
            st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
            max_leaves=8,
        ),
        max_size=6,
    )
)
def test_random_structures_under_valid_header(extra: dict[str, object]) -> None:
    """Well-formed YAML of the wrong shape in any section."""
    import json

    body = "".join(f"{k}: {json.dumps(v)}\n" for k, v in extra.items() if k not in ("schema", "start"))
    check("schema: mailsim/1\nstart: 2026-11-02T09:00:00Z\n" + body)


def test_seeds_are_valid() -> None:
    for seed in SEEDS:
        assert isinstance(load_scenario_text(seed, PATH), Scenario)
