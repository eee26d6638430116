"""The config schema's defaults, for the library: the schema (workflow/schemas/config.schema.yaml) is the one
owner of every config key's default, and the library's defaults (``training.DEFAULT_RECIPE``,
``evaluation.evaluate.DEFAULT_OPTIONS``) are read from it. Imports only PyYAML (in every rule's env), not
jsonschema (:mod:`dstorm.schema` checks configs in Snakemake's own process)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["SCHEMA_PATH", "schema_defaults"]

#: The config schema.
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def schema_defaults(section: str, schema_path: str | Path = SCHEMA_PATH) -> dict[str, Any]:
    """The default of every key of the schema's ``$defs.<section>`` that has one, in schema order; an
    object's default is filled with its own properties' defaults (as the config validation fills it)."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    return _defaults(schema["$defs"][section])


def _defaults(spec: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, sub in spec.get("properties", {}).items():
        if "default" not in sub:
            continue
        value = sub["default"]
        if isinstance(value, dict) and "properties" in sub:
            value = {**_defaults(sub), **value}
        out[key] = value
    return out
