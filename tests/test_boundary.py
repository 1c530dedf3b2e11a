"""The plugin boundary, enforced: the core imports no plugin, no plugin imports another's
modules, plugins use the public API only (import-linter contracts in pyproject.toml). Every core
module is either public or listed as internal, and a forbidden import added to a copy of the
sources breaks the check."""

from __future__ import annotations

import pkgutil
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import tomllib
from pathlib import Path

import pytest

import emrcomm
from support import REPO

CONTRACTS = {c["id"]: c for c in tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
             ["tool"]["importlinter"]["contracts"]}
# What a plugin may import besides ``emrcomm`` itself (the docstring of emrcomm/__init__.py says so).
PUBLIC = {"emrcomm.deadline", "emrcomm.fhir", "emrcomm.fhir.patients", "emrcomm.fhir.regions", "emrcomm.rules", "emrcomm.segments",
          "emrcomm.storage", "emrcomm.testing", "emrcomm.testing.conformance", "emrcomm.web",
          "emrcomm.web.i18n"}


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports over the sources in ``root`` (its src/ and plugins/), with its pyproject.toml.
    ``-S``: the installed (editable) emrcomm must not stand in for the copy."""
    paths = [str(root / "src"), str(root / "plugins"), sysconfig.get_paths()["purelib"]]
    code = (f"import sys; sys.path[:0] = {paths!r}; from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))")
    return subprocess.run([sys.executable, "-S", "-c", code], cwd=root, capture_output=True, text=True, timeout=300,
                          check=False)


def test_every_core_module_is_public_or_listed_as_internal() -> None:
    modules = {m.name for m in pkgutil.walk_packages(emrcomm.__path__, "emrcomm.")}
    internal = set(CONTRACTS["plugins-use-the-public-api"]["forbidden_modules"])
    covered = lambda name: name in PUBLIC or any(name == i or name.startswith(i + ".") for i in internal)  # noqa: E731
    assert sorted(m for m in modules if not covered(m)) == []
    assert modules >= PUBLIC  # and nothing public has gone missing


def test_the_checkout_keeps_every_contract() -> None:
    done = lint_imports(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 3 kept, 0 broken." in done.stdout


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    for part in ("src", "plugins"):
        shutil.copytree(REPO / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    return tmp_path


@pytest.mark.parametrize(("module", "line", "broken"), [
    ("plugins/emrcomm_sms/kannel.py", "from emrcomm.host import Host", "Plugins use the public API only"),
    ("plugins/emrcomm_sms/kannel.py", "from emrcomm_policy import sms", "No plugin imports another plugin's modules"),
    ("src/emrcomm/host.py", "import emrcomm_portal.keyring", "The core imports no plugin"),
])
def test_a_forbidden_import_added_to_a_copy_breaks_the_check(copy: Path, module: str, line: str, broken: str) -> None:
    path = copy / module
    path.write_text(path.read_text(encoding="utf-8") + textwrap.dedent(f"\n{line}  # noqa\n"), encoding="utf-8")
    done = lint_imports(copy)
    assert done.returncode == 1
    assert f"{broken} BROKEN" in done.stdout, done.stdout
    assert line.split()[1] in done.stdout  # the report names the module imported
