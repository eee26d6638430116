"""Per-rule conda envs: every rule declares conda/log/benchmark, env files parse, pins agree with pyproject."""

import re
import tomllib

import pytest
import yaml

from conftest import REPO

RULE_FILES = sorted((REPO / "workflow" / "rules").glob("*.smk"))
#: conda-forge names that differ from PyPI's
CONDA_TO_PYPI = {"pytorch": "torch"}


def pyproject_pins() -> dict[str, str]:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {}
    for dep in deps:
        name, version = re.fullmatch(r"([A-Za-z0-9_.-]+)==([^;\s]+)", dep).groups()
        pins[name.lower()] = version
    return pins


def rules() -> dict[str, str]:
    """Rule name -> its body text, from every rules/*.smk."""
    found = {}
    for path in RULE_FILES:
        text = path.read_text()
        for m in re.finditer(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)*)", text, re.M):
            found[m.group(1)] = m.group(2)
    return found


def test_every_rule_declares_conda_log_and_benchmark():
    found = rules()
    assert found, "no rules parsed"
    for name, body in found.items():
        for directive in ("conda:", "log:", "benchmark:"):
            assert re.search(rf"^\s+{directive}", body, re.M), f"rule {name} lacks {directive}"


@pytest.mark.parametrize("env", sorted((REPO / "envs").glob("*.yaml")), ids=lambda p: p.name)
def test_env_parses_and_its_pins_agree_with_pyproject(env):
    spec = yaml.safe_load(env.read_text())
    assert spec["channels"], f"{env.name}: name channels explicitly"
    pins = pyproject_pins()
    for dep in spec["dependencies"]:
        if isinstance(dep, dict):  # a pip: section
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*=+\s*([^=\s]+)", dep)
        assert m, f"{env.name}: '{dep}' must be pinned as name=version, without a build string"
        name, version = m.group(1).lower(), m.group(2)
        name = CONDA_TO_PYPI.get(name, name)
        if name in pins:
            assert version == pins[name], f"{env.name}: {name}={version}, pyproject pins {pins[name]}"


def test_every_conda_directive_names_an_existing_env():
    for name, body in rules().items():
        m = re.search(r"conda:\s*\n\s*\"([^\"]+)\"", body)
        assert m, name
        assert (REPO / "workflow" / "rules" / m.group(1)).resolve().is_file(), f"rule {name}: {m.group(1)} missing"
