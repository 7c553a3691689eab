"""Digests of everything a run shows, for every scenario the project ships or tests with.

Why: a restructuring must leave every trace, ``--json`` result, mailbox and explanation
byte-identical. ``python tools/golden.py write`` records the digests of the current
code in ``tests/data/golden.json``; ``tests/test_golden.py`` (and ``python tools/golden.py
check``) recompute them and name each artifact that changed. A deliberate behaviour
change regenerates the file in its own commit, whose message says which entries changed
and why.

``python tools/golden.py compare REV`` proves it against another commit directly: it
checks REV out into a temporary worktree, computes the digests there with that
commit's code, and compares them with the working tree's.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "data" / "golden.json"


def corpus(root: Path) -> list[Path]:
    """Every shipped scenario, the test data and the chaos corpus, in a fixed order."""
    files = sorted((root / "scenarios").glob("*.yaml"))
    files += sorted((root / "tests" / "data").glob("*.yaml"))
    files += sorted((root / "tests" / "data" / "chaos").glob("*.yaml"))
    return files


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digests(root: Path) -> dict[str, dict[str, str]]:
    """{relative file: {artifact: sha256}} computed with the code importable as ``simulator``."""
    import simulator
    from simulator.explain.explain import explain_run

    out: dict[str, dict[str, str]] = {}
    here = os.getcwd()
    os.chdir(root)  # files are loaded by their relative path: locations in traces must not name the checkout
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for path in corpus(root):
                rel = str(path.relative_to(root))
                out[rel] = _digest(simulator, explain_run, rel, Path(tmp) / "trace.jsonl")
    finally:
        os.chdir(here)
    return out


def _digest(simulator: Any, explain_run: Any, rel: str, trace: Path) -> dict[str, str]:
    """The four digests of one corpus file (``rel`` relative to the working directory)."""
    result, out = run_digests(simulator, rel, trace)
    expl = [e.to_json() for e in explain_run(result)]
    return {**out, "explain": _sha(json.dumps(expl, sort_keys=True).encode())}


def run_digests(simulator: Any, rel: str, trace: Path) -> tuple[Any, dict[str, str]]:
    """The run of one corpus file and the digests of its trace, ``--json`` result and mailboxes.

    Without the explanations: the engine's mutation oracle (tests/test_engine_mut.py) runs this per file.
    """
    scn = simulator.load(rel)
    result = simulator.run(scn, trace=trace)
    lines = trace.read_bytes().splitlines(keepends=True)
    # the header names the package version and the file's path as given: neither is behaviour
    header = json.loads(lines[0])
    header.pop("version", None)
    header.pop("scenario_path", None)
    body = json.dumps(header, sort_keys=True).encode() + b"\n" + b"".join(lines[1:])
    boxes = {addr: [box.inbox, box.junk, box.bounces, [list(m) for m in box.messages]]
             for addr, box in sorted(_boxes(result).items())}
    return result, {
        "trace": _sha(body),
        "json": _sha(json.dumps(result.to_json(), sort_keys=True).encode()),
        "mailboxes": _sha(json.dumps(boxes, sort_keys=True).encode()),
    }


def _boxes(result: object) -> dict[str, object]:
    """The run's mail store, whichever attribute path this commit's code uses."""
    for path in (("mail_store",), ("engine", "store")):
        obj: object = result
        try:
            for name in path:
                obj = getattr(obj, name)
        except AttributeError:
            continue
        boxes = obj() if callable(obj) else obj
        return dict(getattr(boxes, "boxes", boxes))  # type: ignore[call-overload]
    raise AttributeError("no mail store on the run result")


def diff(old: dict[str, dict[str, str]], new: dict[str, dict[str, str]]) -> list[str]:
    rows = []
    for rel in sorted(set(old) | set(new)):
        if rel not in new:
            rows.append(f"{rel}: missing now")
        elif rel not in old:
            rows.append(f"{rel}: new (not in the recorded digests)")
        else:
            rows += [f"{rel}: {k} differs" for k in sorted(set(old[rel]) | set(new[rel]))
                     if old[rel].get(k) != new[rel].get(k)]
    return rows


def main(argv: list[str]) -> int:
    cmd = argv[0] if argv else "check"
    if cmd == "write":
        GOLDEN.write_text(json.dumps(digests(ROOT), indent=1, sort_keys=True) + "\n")
        return 0
    if cmd == "print":
        print(json.dumps(digests(Path(argv[1]) if len(argv) > 1 else ROOT), sort_keys=True))
        return 0
    if cmd == "check":
        rows = diff(json.loads(GOLDEN.read_text()), digests(ROOT))
        print("\n".join(rows) or "identical")
        return 1 if rows else 0
    if cmd == "compare":
        rev = argv[1]
        with tempfile.TemporaryDirectory() as tmp:
            wt = Path(tmp) / "wt"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(wt), rev],
                           check=True, capture_output=True)
            try:
                # run that commit's code on the *current* corpus files that existed then
                proc = subprocess.run([sys.executable, str(Path(__file__)), "print", str(wt)],
                                      cwd=wt, env={"PYTHONPATH": str(wt), "PATH": "/usr/bin:/bin"},
                                      check=True, capture_output=True, text=True)
            finally:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(wt)],
                               check=False, capture_output=True)
        old = json.loads(proc.stdout)
        new = {k: v for k, v in digests(ROOT).items() if k in old}
        rows = diff(old, new)
        print("\n".join(rows) or f"identical to {rev} on {len(old)} files")
        return 1 if rows else 0
    print("usage: golden.py write|check|compare REV", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
