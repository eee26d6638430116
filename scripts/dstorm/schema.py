"""Config schema errors a person can act on: one line per problem, key first, the schema's words after.

``snakemake.utils.validate`` stops at the first problem with a dump of the schema (about 90 lines, the key
near the end). :func:`schema_problems` lists every problem instead, one line each (``datasets.x.pixel_size_mn:
unknown key; did you mean pixel_size_nm?``); common.smk raises them before calling ``validate`` (which then
only fills in the defaults). Imports jsonschema and PyYAML, both dependencies of Snakemake itself.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import jsonschema
import yaml

__all__ = ["schema_problems", "format_problems"]


def _key(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the config"


def _unknown_keys(error) -> list[str]:
    allowed = set(error.schema.get("properties", {}))
    return [k for k in error.instance if isinstance(k, str) and k not in allowed] if isinstance(error.instance, dict) else []


def _describe(error) -> list[tuple[str, str]]:
    """``[(line, detail)]`` for one jsonschema error (an unknown-key error gives a line per key)."""
    where = _key(error.absolute_path)
    detail = " ".join(str(error.schema.get("description", "")).split())
    if error.validator == "additionalProperties" and error.schema.get("additionalProperties") is False:
        allowed = sorted(error.schema.get("properties", {}))
        out = []
        for k in _unknown_keys(error):
            close = difflib.get_close_matches(k, allowed, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else f"; known keys: {', '.join(allowed)}"
            prefix = f"{where}." if error.absolute_path else ""
            out.append((f"{prefix}{k}: unknown key{hint}", f"known keys here: {', '.join(allowed)}"))
        return out
    if "propertyNames" in error.relative_schema_path:
        return [(f"{where}: {error.instance!r} is not a valid name: letters, digits, _ and - only, starting with a "
                 f"letter or digit{' (density_ is reserved for training sets)' if 'density_' in str(error.schema) else ''}",
                 detail)]  # fmt: skip
    if error.validator in ("anyOf", "oneOf") and error.context:
        best = jsonschema.exceptions.best_match(error.context)
        message = f"{error.instance!r} fits none of the allowed forms ({best.message})"
    else:
        message = error.message
    if len(message) > 200:
        message = message[:200] + "…"
    return [(f"{where}: {message}", detail)]


def schema_problems(config: dict[str, Any], schema_path: str | Path) -> list[tuple[str, str]]:
    """Every schema violation of ``config`` as ``(one-line problem, the key's description)``, in key order."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    problems = [problem for error in validator.iter_errors(config) for problem in _describe(error)]
    return sorted(problems, key=lambda problem: problem[0].split(":")[0])


def format_problems(problems: list[tuple[str, str]], source: str = "") -> str:
    """The message: one line per problem first, then what each key expects (from the schema)."""
    lines = [f"invalid config{f' ({source})' if source else ''}: {len(problems)} problem(s)"]
    lines += [f"  {line}" for line, _ in problems]
    details = [f"  {line.split(':')[0]}: {detail}" for line, detail in problems if detail]
    if details:
        lines += ["", "What these keys expect (workflow/schemas/config.schema.yaml, config/README.md):", *dict.fromkeys(details)]
    return "\n".join(lines)
