"""Per-rule conda envs: every rule declares conda/log/benchmark, env files parse, pins agree with pyproject."""

import ast
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from conftest import REPO

RULE_FILES = sorted((REPO / "workflow" / "rules").glob("*.smk"))
#: conda-forge names that differ from PyPI's (pytorch-gpu: conda-forge's metapackage of the CUDA build)
CONDA_TO_PYPI = {"pytorch": "torch", "pytorch-gpu": "torch"}
#: the conda package that provides an imported top-level module, where the names differ
MODULE_TO_CONDA = {"torch": "pytorch-gpu", "yaml": "pyyaml"}
#: modules that come with another listed package
BUNDLED = {"lightning_utilities": "lightning"}
SCRIPTS = REPO / "scripts"


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


def rule_field(body: str, directive: str) -> str:
    m = re.search(rf"{directive}:\s*\n\s*\"([^\"]+)\"", body)
    assert m, directive
    return m.group(1)


def module_file(name: str) -> Path | None:
    """The file of a dstorm module (a package's __init__.py), or None if it is not one."""
    base = SCRIPTS.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def third_party_imports(script: Path) -> set[str]:
    """Top-level third-party modules imported anywhere (functions included) by ``script`` and by every dstorm
    module it reaches, following the package's own imports."""
    found, seen, todo = set(), set(), [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top == "dstorm":
                    for parts in range(1, name.count(".") + 2):  # the package __init__s on the way, too
                        if (f := module_file(".".join(name.split(".")[:parts]))) is not None:
                            todo.append(f)
                elif top not in sys.stdlib_module_names and top != "__future__":
                    found.add(top)
    return found


def env_packages(env: str) -> set[str]:
    spec = yaml.safe_load((REPO / "workflow" / "rules" / env).resolve().read_text())
    return {re.split(r"[=<> ]", d)[0].lower() for d in spec["dependencies"] if isinstance(d, str)} - {"python"}


def test_each_env_holds_what_its_rules_import_and_no_more():
    needs: dict[str, set[str]] = {}
    for name, body in rules().items():
        if "script:" not in body:
            continue
        script = (REPO / "workflow" / "rules" / rule_field(body, "script")).resolve()
        env = rule_field(body, "conda")
        modules = third_party_imports(script)
        packages = {MODULE_TO_CONDA.get(m, m) for m in modules if m not in BUNDLED}
        have = env_packages(env)
        missing = packages - have
        assert not missing, f"rule {name} ({script.name}) imports {sorted(missing)}, not in {env}"
        needs.setdefault(env, set()).update(packages)
    for env, packages in needs.items():
        extra = env_packages(env) - packages
        assert not extra, f"{env} lists {sorted(extra)}, which none of its rules imports"


def test_the_import_scan_sees_lazy_imports_and_follows_the_library():
    # reconstruct.py imports tqdm only inside a function, and torch through dstorm.reconstruction
    found = third_party_imports(SCRIPTS / "reconstruct.py")
    assert {"torch", "tqdm", "numpy", "scipy", "tifffile", "matplotlib", "pandas"} <= found
    # the evaluate stage never reaches torch
    assert "torch" not in third_party_imports(SCRIPTS / "evaluate.py")


def test_envs_solve_anywhere_no_build_strings_no_platform_packages():
    windows_only = {"icc_rt", "vs2015_runtime", "vc", "m2w64-toolchain", "pywin32"}
    for env in sorted((REPO / "envs").glob("*.yaml")):
        spec = yaml.safe_load(env.read_text())
        assert spec["channels"] == ["conda-forge", "nodefaults"], env.name
        for dep in spec["dependencies"]:
            assert isinstance(dep, str), f"{env.name}: no pip sections"
            assert dep.count("=") == 1, f"{env.name}: {dep}: pin a version only (no build string, no ==)"
            assert dep.split("=")[0] not in windows_only, f"{env.name}: {dep} exists only on Windows"
