"""The JSON Schema (draft 2020-12) of ``mailsim/1``, generated from the loader's own key tables.

Nothing here restates the format: every key, kind, default and description comes from the
tables the sections read with (:mod:`simulator.scenario.fields`), so a key added to the
loader appears in the schema, and editors (VS Code's YAML extension, any YAML language
server) complete, document and check it. What a pattern cannot express — magnitudes (100
years at most), real calendar days, references to ids, uniqueness, label octet counts — the
loader still checks; the schema never refuses a file the loader accepts.

The patterns are long (they spell out every space ``strip()`` removes) and shared by many
keys, so each named one is written once under ``$defs`` and referenced.
"""

from __future__ import annotations

import json
from typing import Any

from simulator.scenario.loader import DOCUMENT_TABLE, SUPPORTED_SCHEMAS

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def named_patterns() -> dict[str, str]:
    """Each pattern constant of the scenario layer → its ``$defs`` name (``DURATION_PATTERN`` → ``duration``)."""
    from simulator.scenario import kinds, times
    from simulator.scenario.sections import dns

    names: dict[str, str] = {}
    for module in (times, kinds, dns):
        for attr, value in vars(module).items():
            if attr.endswith("_PATTERN") and isinstance(value, str):
                names.setdefault(value, attr.removesuffix("_PATTERN").lower().replace("_", "-"))
    return names


def _share_patterns(node: Any, names: dict[str, str], used: dict[str, str]) -> Any:
    """``node`` with every string-with-a-named-pattern replaced by a ``$ref`` to its definition."""
    if isinstance(node, list):
        return [_share_patterns(item, names, used) for item in node]
    if not isinstance(node, dict):
        return node
    pattern = node.get("pattern")
    kind = node.get("type")
    if isinstance(pattern, str) and pattern in names and kind in ("string", ["string", "null"]):
        name = names[pattern]
        used[name] = pattern
        notes = {k: v for k, v in node.items() if k not in ("type", "pattern")}
        ref = {"$ref": f"#/$defs/{name}"}
        return {**ref, **notes} if kind == "string" else {"anyOf": [ref, {"type": "null"}], **notes}
    return {key: _share_patterns(value, names, used) for key, value in node.items()}


def scenario_schema() -> dict[str, Any]:
    """The schema as a JSON-ready mapping."""
    used: dict[str, str] = {}
    body = _share_patterns(DOCUMENT_TABLE.schema(), named_patterns(), used)
    return {
        "$schema": DRAFT,
        "$id": f"urn:mailsim:schema:{SUPPORTED_SCHEMAS[0].replace('/', '-')}",
        "title": f"mailsim scenario ({SUPPORTED_SCHEMAS[0]})",
        **body,
        "$defs": {name: {"type": "string", "pattern": used[name]} for name in sorted(used)},
    }


def schema_text() -> str:
    """The schema as ``mailsim schema`` prints it: indented JSON, non-ASCII kept, one final newline."""
    return json.dumps(scenario_schema(), indent=2, ensure_ascii=False) + "\n"
