"""DESIGN §1's layer order, held by the code: imports one way, no cycles, rooms of a size a person can hold.

Read from the source with ``ast`` (imports under ``TYPE_CHECKING`` count: a type-only
cycle is still a cycle for the reader). Each finding names the module and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "simulator"
RANK = {"domain": 0, "scenario": 1, "trace": 1, "net": 2, "transport": 3, "engine": 4, "explain": 5,
        "replay": 6, "sweep": 6, "chaos": 7, "cli": 8, "": 9}
ENGINE_PUBLIC = {"simulator.engine", "simulator.engine.run", "simulator.engine.result", "simulator.engine.session"}
SIMPY_PRIVATE = {"_now", "_queue", "_ok", "_value", "_eid", "_active_proc"}
MAX_LINES = 600


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        out[".".join(rel.parts).removesuffix(".__init__")] = path
    return out


MODULES = _modules()


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANK else ""


def _resolve(name: str) -> str:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _imports(module: str, path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")
                base = ".".join(up[: len(up) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names]
        for name in names:
            target = _resolve(name)
            if target.startswith("simulator") and target != module:
                out.append((target, node.lineno))
    return out


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def test_imports_follow_the_layer_order() -> None:
    bad = [f"{m}:{line} ({_layer(m) or 'top'}) imports {t} ({_layer(t) or 'top'})"
           for m, edges in GRAPH.items() for t, line in edges if RANK[_layer(t)] > RANK[_layer(m)]]
    assert bad == []


def test_nothing_above_the_engine_reads_its_internals() -> None:
    bad = [f"{m}:{line} imports {t}" for m, edges in GRAPH.items() for t, line in edges
           if _layer(t) == "engine" and _layer(m) != "engine" and t not in ENGINE_PUBLIC]
    for m, path in MODULES.items():
        if _layer(m) == "engine":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and node.attr in SIMPY_PRIVATE
                    and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
                bad.append(f"{m}:{node.lineno} touches .{node.attr}")
    assert bad == []


def test_no_import_cycles() -> None:
    seen: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(m: str, stack: list[str]) -> None:
        seen[m] = 1
        stack.append(m)
        for t, _line in GRAPH.get(m, []):
            if seen.get(t) == 1:
                cycles.append([*stack[stack.index(t):], t])
            elif t not in seen:
                visit(t, stack)
        stack.pop()
        seen[m] = 2

    for m in sorted(GRAPH):
        if m not in seen:
            visit(m, [])
    assert cycles == []


def test_no_module_is_over_600_lines() -> None:
    big = {m: n for m, p in MODULES.items() if (n := p.read_text(encoding="utf-8").count("\n")) > MAX_LINES}
    assert big == {}
