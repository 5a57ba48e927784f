"""The project's import graph, read from its source (ast), for the tests of its floors and of the service's
image: which first-party modules each file imports, at module level and inside functions alike."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def first_party_packages(root: Path = REPO) -> list[str]:
    """The top-level packages pyproject.toml installs (its packages.find include list, `name*` patterns)."""
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted(pattern.rstrip("*") for pattern in patterns)


def module_name(path: Path, root: Path) -> str:
    """`monolith/cli.py` -> `monolith.cli`, `settings/__init__.py` -> `settings`, `app.py` -> `app`."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path, packages: list[str]) -> dict[str, Path]:
    """Every module of `packages` (folders under `root`), by dotted name."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if "__pycache__" not in path.parts:
                found[module_name(path, root)] = path
    return found


FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def _nodes(tree: ast.AST, scope: str | None) -> list[ast.AST]:
    """Every node of the file (scope None); those outside any function (scope ""); or those of the
    module-level function named `scope`."""
    if scope is None:
        return list(ast.walk(tree))
    if scope:
        (function,) = [node for node in ast.iter_child_nodes(tree)
                       if isinstance(node, FUNCTIONS[:2]) and node.name == scope]
        return list(ast.walk(function))
    found, pending = [], [tree]
    while pending:
        node = pending.pop()
        found.append(node)
        pending += [child for child in ast.iter_child_nodes(node) if not isinstance(child, FUNCTIONS)]
    return found


def imports(path: Path, root: Path, scope: str | None = None) -> list[tuple[str, int]]:
    """(module imported, line) for every import statement in the file, wherever it stands (module level,
    a function, `if TYPE_CHECKING:`), or only outside functions (scope "") or only in one module-level
    function (scope its name); relative imports resolved against the file's package. For
    `from a.b import c` both `a.b` and `a.b.c` are named: c may be a submodule."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path, root)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found: list[tuple[str, int]] = []
    for node in _nodes(tree, scope):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append((target, node.lineno))
            found += [(f"{target}.{alias.name}", node.lineno) for alias in node.names if alias.name != "*"]
    return found


def first_party_imports(path: Path, root: Path, known: dict[str, Path],
                        scope: str | None = None) -> list[tuple[str, int]]:
    """The imports of `path` (in `scope`, as `imports` reads it) that name a module of `known` (a
    `from m import name` that is no submodule counts as an import of m)."""
    return [(target, line) for target, line in imports(path, root, scope) if target in known]
