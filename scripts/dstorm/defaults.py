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
    """The default of every key of the schema's ``$defs.<section>`` that has one, in schema order."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    properties = schema["$defs"][section]["properties"]
    return {key: spec["default"] for key, spec in properties.items() if "default" in spec}
