"""The JSON Schema (draft 2020-12) of ``mailsim/1``, generated from the loader's own key tables.

Nothing here restates the format: every key, kind, default and description comes from the
tables the sections read with (:mod:`simulator.scenario.fields`), so a key added to the
loader appears in the schema, and editors (VS Code's YAML extension, any YAML language
server) complete, document and check it. What a pattern cannot express — magnitudes (100
years at most), real calendar days, references to ids, uniqueness, label octet counts — the
loader still checks; the schema never refuses a file the loader accepts.

The patterns are long (they spell out every space ``strip()`` removes) and, like the closed
vocabularies (reason codes, statuses), shared by many keys: each is written once under
``$defs`` and referenced.
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


def named_vocabularies() -> dict[tuple[str, ...], str]:
    """The closed vocabularies (reason codes, statuses, …) → their ``$defs`` names."""
    from simulator.domain import vocabulary

    return {
        tuple(value): attr.lower().replace("_", "-")
        for attr, value in vars(vocabulary).items()
        if attr.isupper() and isinstance(value, tuple) and len(value) > 3 and all(isinstance(v, str) for v in value)
    }


def _share(node: Any, patterns: dict[str, str], vocabularies: dict[tuple[str, ...], str], used: dict[str, Any]) -> Any:
    """``node`` with every named pattern or vocabulary replaced by a ``$ref`` to its one definition."""
    if isinstance(node, list):
        return [_share(item, patterns, vocabularies, used) for item in node]
    if not isinstance(node, dict):
        return node
    kind = node.get("type")
    pattern, options = node.get("pattern"), node.get("enum")
    name: str | None = None
    definition: dict[str, Any] = {}
    own: tuple[str, ...] = ()
    if isinstance(pattern, str) and pattern in patterns:
        name, definition, own = patterns[pattern], {"type": "string", "pattern": pattern}, ("type", "pattern")
    elif isinstance(options, list) and tuple(options) in vocabularies:
        name, definition, own = vocabularies[tuple(options)], {"type": "string", "enum": options}, ("type", "enum")
    if name is None or kind not in ("string", ["string", "null"]):
        return {key: _share(value, patterns, vocabularies, used) for key, value in node.items()}
    used[name] = definition
    notes = {k: v for k, v in node.items() if k not in own}
    ref = {"$ref": f"#/$defs/{name}"}
    return {**ref, **notes} if kind == "string" else {"anyOf": [ref, {"type": "null"}], **notes}


def scenario_schema() -> dict[str, Any]:
    """The schema as a JSON-ready mapping."""
    used: dict[str, Any] = {}
    body = _share(DOCUMENT_TABLE.schema(), named_patterns(), named_vocabularies(), used)
    return {
        "$schema": DRAFT,
        "$id": f"urn:mailsim:schema:{SUPPORTED_SCHEMAS[0].replace('/', '-')}",
        "title": f"mailsim scenario ({SUPPORTED_SCHEMAS[0]})",
        **body,
        "$defs": {name: used[name] for name in sorted(used)},
    }


def schema_text() -> str:
    """The schema as ``mailsim schema`` prints it: indented JSON, non-ASCII kept, one final newline."""
    return json.dumps(scenario_schema(), indent=2, ensure_ascii=False) + "\n"
