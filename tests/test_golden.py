"""Every trace, --json result, mailbox and explanation of the corpus is what tests/data/golden.json records.

The digests were written by ``tools/golden.py write`` before this round's restructuring; a
deliberate behaviour change rewrites them in a commit that names the entries and why.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("golden", ROOT / "tools" / "golden.py")
assert spec is not None and spec.loader is not None
golden = importlib.util.module_from_spec(spec)
spec.loader.exec_module(golden)


def test_every_corpus_file_has_recorded_digests() -> None:
    recorded = json.loads(golden.GOLDEN.read_text())
    files = {str(p.relative_to(ROOT)) for p in golden.corpus(ROOT)}
    assert files == set(recorded), "run `python tools/golden.py write` for new corpus files, in their own commit"


def test_outputs_are_byte_identical_to_the_recorded_digests() -> None:
    recorded = json.loads(golden.GOLDEN.read_text())
    assert golden.diff(recorded, golden.digests(ROOT)) == []
