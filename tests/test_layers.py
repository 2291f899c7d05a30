"""The layers of ../shared/DESIGN.md, enforced: import-linter's contracts (pyproject.toml) hold for the
package, fail on a deliberate wrong-way import, and only rsc.rl imports RLlib and Tune."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT

PACKAGE = PROJECT / "platform" / "rsc"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(project: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(project / "platform")}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_package_keeps_every_contract():
    done = lint_imports(PROJECT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("core/scratch.py", "import rsc.cli.main\n", "Layers"),  # upward
        ("serve/scratch.py", "import rsc.paper.service\n", "Layers"),  # a sibling of the same layer
        ("stages/scratch.py", "import mlflow\n", "Only rsc.registry imports mlflow"),
    ],
)
def test_a_wrong_way_import_breaks_a_contract(tmp_path, module, line, contract):
    shutil.copytree(PACKAGE, tmp_path / "platform" / "rsc", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PROJECT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "platform" / "rsc" / module).write_text(line)
    done = lint_imports(tmp_path)
    assert done.returncode != 0
    broken = [row for row in done.stdout.splitlines() if row.endswith("BROKEN")]
    assert any(row.startswith(contract) for row in broken), done.stdout[-2000:]
    assert module.replace("/", ".").removesuffix(".py") in done.stdout


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (inside functions too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_only_rl_imports_rllib_and_tune():
    """import-linter cannot name ray.rllib (a subpackage of another distribution): checked here."""
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(
            name for name in imported_modules(path) if name.startswith(("ray.rllib", "ray.tune"))
        )
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] != "rl"
    }
    assert {path: names for path, names in offenders.items() if names} == {}
