"""The JSON Schema (draft 2020-12) of ``mailsim/1``, generated from the loader's own key tables.

Nothing here restates the format: every key, kind, default and description comes from the
tables the sections read with (:mod:`simulator.scenario.fields`), so a key added to the
loader appears in the schema, and editors (VS Code's YAML extension, any YAML language
server) complete, document and check it. What a pattern cannot express — magnitudes (100
years at most), real calendar days, references to ids, uniqueness, label octet counts — the
loader still checks; the schema never refuses a file the loader accepts.
"""

from __future__ import annotations

import json
from typing import Any

from simulator.scenario.loader import DOCUMENT_TABLE, SUPPORTED_SCHEMAS

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def scenario_schema() -> dict[str, Any]:
    """The schema as a JSON-ready mapping."""
    return {
        "$schema": DRAFT,
        "$id": f"urn:mailsim:schema:{SUPPORTED_SCHEMAS[0].replace('/', '-')}",
        "title": f"mailsim scenario ({SUPPORTED_SCHEMAS[0]})",
        **DOCUMENT_TABLE.schema(),
    }


def schema_text() -> str:
    """The schema as ``mailsim schema`` prints it: indented JSON, non-ASCII kept, one final newline."""
    return json.dumps(scenario_schema(), indent=2, ensure_ascii=False) + "\n"
