"""The grid of a sweep: ``--vary PATH=V1,V2`` options, seeds, and applying one combination to a scenario.

Overrides are applied to the *parsed YAML tree*, not to the frozen ``Scenario``, so every value goes
through exactly the loader's validation and defaults, and a bad value fails the way it would in the
file. The tree is path-copied: a run copies only the mappings and lists on the way to the values it
changes, so the base tree of a million-invoice scenario is parsed once per worker and shared.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from simulator.scenario.errors import ScenarioError, did_you_mean
from simulator.scenario.yamltree import YMap, YSeq, parse_yaml

# Values parsed from the command line carry positions on these pseudo-lines, so a loader error
# about one of them can be told apart from an error in the file and reported against the option.
OVERRIDE_LINE = 1_000_000_000

MAX_RUNS = 10_000_000
SELECTOR_KEYS = ("id", "domain", "name")


class GridError(ValueError):
    """A ``--vary``/``--seeds`` option is malformed; the message names the option."""


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a path: a mapping key, or a list item chosen by index or by id/domain/name."""

    key: str | None = None
    select: str | None = None

    def __str__(self) -> str:
        return self.key if self.key is not None else f"[{self.select}]"


@dataclass(frozen=True, slots=True)
class Vary:
    """One ``--vary`` option: where, and the values as written."""

    path: str
    steps: tuple[Step, ...]
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Override:
    """One value of one ``--vary``: ``index`` tells which option, for error messages."""

    index: int
    path: str
    value: str

    @property
    def option(self) -> str:
        return f"--vary '{self.path}={self.value}'"

    @property
    def line(self) -> int:
        """The pseudo-line its value's positions carry (see OVERRIDE_LINE)."""
        return OVERRIDE_LINE + self.index


@dataclass(frozen=True, slots=True)
class RunSpec:
    """Everything one run needs, and nothing that depends on where it runs."""

    run: int
    key: str
    overrides: tuple[Override, ...]
    seed: int


_PATH_TOKEN = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_-]*)|\[([^\]]*)\]")


def parse_path(text: str) -> tuple[Step, ...]:
    """``users[u1].sync.last_login`` → key users, select u1, key sync, key last_login."""
    steps: list[Step] = []
    pos = 0
    text = text.strip()
    if not text:
        raise GridError("empty path")
    while pos < len(text):
        m = _PATH_TOKEN.match(text, pos)
        if m is None or (m.group(1) is not None and pos > 0 and text[pos] != "." and text[pos - 1] != "]"):
            raise GridError(f"cannot read the path {text!r} at character {pos + 1} "
                            "(expected key, .key or [id]; e.g. users[u1].sync.last_login)")
        if m.group(1) is not None:
            if pos == 0 and text[0] == ".":
                raise GridError(f"the path {text!r} starts with '.'")
            steps.append(Step(key=m.group(1)))
        else:
            sel = m.group(2).strip()
            if not sel:
                raise GridError(f"empty [] in the path {text!r}")
            steps.append(Step(select=sel))
        pos = m.end()
    if steps[0].key is None:
        raise GridError(f"the path {text!r} must start with a top-level key such as users or settings")
    return tuple(steps)


def split_values(text: str) -> tuple[str, ...]:
    """Split on commas outside brackets, braces and quotes: ``[5m,10m],[1h]`` is two values."""
    out: list[str] = []
    depth = 0
    quote = ""
    cur: list[str] = []
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = ""
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur).strip())
    if quote or depth != 0:
        raise GridError(f"unbalanced quotes or brackets in {text!r}")
    if any(v == "" for v in out):
        raise GridError(f"an empty value in {text!r} (write null for 'unset')")
    return tuple(out)


def parse_vary(option: str) -> Vary:
    path, eq, values = option.partition("=")
    if not eq:
        raise GridError(f"--vary {option!r}: expected PATH=V1,V2,... (e.g. settings.queue_poll=1m,5m)")
    try:
        steps = parse_path(path)
        vals = split_values(values)
    except GridError as e:
        raise GridError(f"--vary {option!r}: {e}") from None
    if len(set(vals)) != len(vals):
        raise GridError(f"--vary {option!r}: a value is listed twice")
    return Vary(path.strip(), steps, vals)


def parse_seeds(count: int | None, seed_range: str | None, default: int) -> tuple[int, ...]:
    """``--seeds N`` is 0..N-1; ``--seed-range A:B`` is A..B with both ends included; neither: the file's."""
    if count is not None and seed_range is not None:
        raise GridError("give --seeds or --seed-range, not both")
    if count is not None:
        if count < 1:
            raise GridError(f"--seeds must be at least 1, got {count}")
        return tuple(range(count))
    if seed_range is not None:
        a, colon, b = seed_range.partition(":")
        try:
            lo, hi = int(a), int(b)
        except ValueError:
            raise GridError(f"--seed-range {seed_range!r}: expected A:B, e.g. 1:100 (both included)") from None
        if not colon or lo < 0 or hi < lo:
            raise GridError(f"--seed-range {seed_range!r}: expected A:B with 0 <= A <= B")
        return tuple(range(lo, hi + 1))
    return (default,)


def run_key(overrides: Iterable[Override], seed: int) -> str:
    """A short stable id for a (parameters, seed) pair: what ``--resume`` matches rows on."""
    h = hashlib.sha256()
    for o in overrides:
        h.update(f"{o.path}\x00{o.value}\x01".encode())
    h.update(f"seed={seed}".encode())
    return h.hexdigest()[:16]


def build_grid(varies: Sequence[Vary], seeds: Sequence[int]) -> list[RunSpec]:
    """Every combination in command-line order, seeds innermost (so one setting's runs sit together)."""
    total = len(seeds)
    for v in varies:
        total *= len(v.values)
    if total > MAX_RUNS:
        raise GridError(f"the grid has {total:,} runs; the limit is {MAX_RUNS:,}")
    axes = [[Override(i, v.path, val) for val in v.values] for i, v in enumerate(varies)]
    out: list[RunSpec] = []
    for combo in itertools.product(*axes):
        for seed in seeds:
            out.append(RunSpec(len(out), run_key(combo, seed), tuple(combo), seed))
    return out


# --- applying a combination to the parsed tree -------------------------------------------------------


def _copy(node: YMap | YSeq) -> YMap | YSeq:
    if isinstance(node, YMap):
        m = YMap(node.pos)
        m.update(node)
        m.keypos = dict(node.keypos)
        m.valpos = dict(node.valpos)
        return m
    s = YSeq(node.pos)
    s.extend(node)
    s.itempos = list(node.itempos)
    return s


def _shift(node: object, line: int) -> object:
    """Move a value parsed from the command line onto its pseudo-line (columns stay as typed)."""
    if isinstance(node, YMap):
        m = YMap((line, node.pos[1]))
        for k, v in node.items():
            m[k] = _shift(v, line)
            m.keypos[k] = (line, node.keypos[k][1])
            m.valpos[k] = (line, node.valpos[k][1])
        return m
    if isinstance(node, YSeq):
        s = YSeq((line, node.pos[1]))
        for v, p in zip(node, node.itempos, strict=True):
            s.append(_shift(v, line))
            s.itempos.append((line, p[1]))
        return s
    return node


def parse_value(o: Override) -> object:
    """The YAML value of an override (``-80d``, ``5m``, ``[5m, 10m]``, ``null``, ``{provider: google}``)."""
    try:
        return _shift(parse_yaml(o.value, o.option), o.line)
    except ScenarioError as e:
        raise GridError(f"{o.option}: {e.message}") from None


def _describe_item(item: object) -> str:
    if isinstance(item, YMap):
        for k in SELECTOR_KEYS:
            if isinstance(item.get(k), str):
                return str(item[k])
    return "?"


def _select(seq: YSeq, sel: str, where: str) -> int:
    if re.fullmatch(r"-?[0-9]+", sel):
        i = int(sel)
        if not -len(seq) <= i < len(seq):
            raise GridError(f"{where}[{sel}]: the list has {len(seq)} items")
        return i % len(seq)
    name, _, rtype = sel.partition("/")
    for k in SELECTOR_KEYS:
        hits = [i for i, item in enumerate(seq)
                if isinstance(item, YMap) and str(item.get(k)) == name
                and (not rtype or str(item.get("type", "")).upper() == rtype.upper())]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            types = sorted({str(seq[i].get("type")) for i in hits})
            raise GridError(f"{where}[{sel}]: {len(hits)} items have {k} {name!r}; "
                            f"add the type ({', '.join(f'[{name}/{t}]' for t in types)}) or use an index")
    names = [_describe_item(item) for item in seq]
    known = [n for n in names if n != "?"]
    hint = did_you_mean(name, known)
    if not hint and known:
        hint = f" (it has: {', '.join(known[:12])}{', ...' if len(known) > 12 else ''})"
    raise GridError(f"{where}[{sel}]: no item with id, domain or name {name!r}{hint}")


def apply(root: object, steps: Sequence[Step], value: object, where: str, line: int = OVERRIDE_LINE) -> YMap:
    """A copy of ``root`` with ``value`` at ``steps``; missing mappings on the way are created.

    The value's position is put on ``line`` so that loader errors about it can be traced back.
    """
    vpos = value.pos if isinstance(value, YMap | YSeq) else (line, 1)
    if not isinstance(root, YMap):
        raise GridError(f"{where}: the scenario is not a mapping")
    new_root = _copy(root)
    assert isinstance(new_root, YMap)
    node: YMap | YSeq = new_root
    walked = ""
    for i, step in enumerate(steps):
        last = i == len(steps) - 1
        if isinstance(node, YSeq):
            if step.select is None:
                raise GridError(f"{where}: {walked or 'the value'} is a list; select an item with [id] or [index]")
            try:
                idx = _select(node, step.select, walked)
            except GridError as e:
                raise GridError(f"{where}: {e}") from None
            walked += f"[{step.select}]"
            if last:
                node[idx] = value
                node.itempos[idx] = vpos
                return new_root
            child = node[idx]
            if not isinstance(child, YMap | YSeq):
                raise GridError(f"{where}: {walked} is a single value; nothing to select inside it")
            child = _copy(child)
            node[idx] = child
            node = child
            continue
        key = step.key if step.key is not None else step.select
        assert key is not None
        walked += (f".{key}" if walked and step.key is not None else key if step.key is not None else f"[{key}]")
        if last:
            node[key] = value
            node.keypos.setdefault(key, (line, 1))
            node.valpos[key] = vpos
            return new_root
        child = node.get(key)
        if child is None:  # created here, so anything wrong inside it is the option's fault
            child = YMap((line, 1))
            node.keypos[key] = (line, 1)
            node.valpos[key] = (line, 1)
        elif not isinstance(child, YMap | YSeq):
            raise GridError(f"{where}: {walked} is a single value; nothing to set inside it")
        else:
            child = _copy(child)
        node[key] = child
        node = child
    raise GridError(f"{where}: empty path")  # pragma: no cover - parse_path never returns ()


def override_error(err: ScenarioError, overrides: Sequence[Override]) -> str | None:
    """``--vary '...': message`` when the loader's error is about a command-line value, else None."""
    if err.line < OVERRIDE_LINE:
        return None
    o = next((o for o in overrides if o.line == err.line), None)
    return f"{o.option if o is not None else '--vary'}: {err.message}"


def apply_all(root: object, overrides: Sequence[Override]) -> Any:
    """``root`` with every override of one run applied, in option order."""
    tree = root
    for o in overrides:
        tree = apply(tree, parse_path(o.path), parse_value(o), o.option, o.line)
    return tree
