"""The house follows the data: the layers hold (lazy imports included), an upward import breaks the build,
and private APIs of Dagster, MLflow and Evidently are used only in ``claims_platform.adapters``."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "claims_platform"
LIBRARIES = ("dagster", "dagster_aws", "dagster_mlflow", "dagster_postgres", "mlflow", "evidently")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}  # the copy's package, ahead of the installed one
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_layers_hold():
    result = _lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_build_even_inside_a_function(tmp_path):
    shutil.copytree(PACKAGE, tmp_path / "claims_platform", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    months = tmp_path / "claims_platform" / "core" / "months.py"
    months.write_text(
        months.read_text()
        + "\n\ndef _upward():\n    from claims_platform.monitoring import drift\n\n    return drift\n"
    )
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    assert (
        "BROKEN" in result.stdout
        and "claims_platform.core.months -> claims_platform.monitoring.drift" in result.stdout
    )


def _private_uses(path: Path, defined: set[str]) -> list[str]:
    """Where ``path`` imports a ``_``-prefixed module or name of a library, or reaches an inherited
    ``self._name`` that the platform never defines (a library class's private member)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in LIBRARIES:
            parts = node.module.split(".")
            names = [alias.name for alias in node.names]
            if (
                any(p.startswith("_") for p in parts)
                or any(n.startswith("_") for n in names)
                or "legacy" in parts
            ):
                found.append(
                    f"{path.relative_to(REPO)}:{node.lineno} from {node.module} import {', '.join(names)}"
                )
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] in LIBRARIES and (any(p.startswith("_") for p in parts) or "legacy" in parts):
                    found.append(f"{path.relative_to(REPO)}:{node.lineno} import {alias.name}")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = node.value.id if isinstance(node.value, ast.Name) else None
            if owner not in ("self", "cls") or node.attr not in defined:
                found.append(f"{path.relative_to(REPO)}:{node.lineno} {owner or '…'}.{node.attr}")
    return found


def _defined_names() -> set[str]:
    names: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
    return names


def test_private_library_apis_are_used_only_in_the_adapters():
    defined = _defined_names()
    outside = [p for p in sorted(PACKAGE.rglob("*.py")) if "adapters" not in p.relative_to(PACKAGE).parts]
    assert [use for path in outside for use in _private_uses(path, defined)] == []
    # The check finds what it looks for: the adapters themselves are full of it.
    inside = [
        use for path in sorted((PACKAGE / "adapters").glob("*.py")) for use in _private_uses(path, defined)
    ]
    assert any("dagster._core.storage.tags" in use for use in inside) and any(
        "evidently.legacy" in use for use in inside
    )


def test_no_loose_top_level_module():
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert loose == ["__init__.py", "definitions.py"]
