"""The project's layering: imports only point down. No module imports itself back through others,
no package does (contract <- models, export, serving <- pipeline), the contract imports nothing
of the project's, and it loads without TensorFlow or MLflow."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = ("contract", "models", "export", "serving", "pipeline")


def module_imports(root: Path, packages=PACKAGES) -> dict[str, set[str]]:
    """Each module of ``packages`` under ``root`` -> the project's modules it imports, anywhere in
    its body (imports inside functions count: they are how a circle hides)."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    edges = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the package, up level - 1
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([node.module] if node.module else [])])
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)
        edges[name] = {m for m in found if m in modules and m != name}
    return edges


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(edges.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return out


def package_edges(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """Top-level package -> the other top-level packages its modules import."""
    out: dict[str, set[str]] = {}
    for name, imported in edges.items():
        for other in imported:
            if other.split(".")[0] != name.split(".")[0]:
                out.setdefault(name.split(".")[0], set()).add(other.split(".")[0])
    return out


def test_no_module_or_package_imports_itself_back():
    edges = module_imports(ROOT)
    assert len(edges) > 60 and "pipeline.loop" in edges and "contract.card" in edges
    assert circles(edges) == [], "import circles between modules"
    assert circles(package_edges(edges)) == [], f"import circles between packages: {package_edges(edges)}"


def test_the_contract_is_the_floor_and_serving_and_export_stand_apart():
    packages = package_edges(module_imports(ROOT))
    assert "contract" not in packages, f"the contract imports {packages.get('contract')}"
    assert packages["export"] == {"contract"} and packages["serving"] == {"contract"}
    assert "pipeline" not in set().union(*(packages[p] for p in ("models", "export", "serving")))


def test_the_contract_loads_without_tensorflow_or_mlflow():
    code = (
        "import sys; import contract.card, contract.files, contract.images, contract.signature\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'mlflow', 'onnxruntime') if m in sys.modules]\n"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_check_finds_a_circle_through_a_function_level_import(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "__init__.py").write_text("")
    (tmp_path / "b" / "__init__.py").write_text("")
    (tmp_path / "a" / "x.py").write_text("from b import y\n")
    (tmp_path / "a" / "z.py").write_text("X = 1\n")
    (tmp_path / "b" / "y.py").write_text("def f():\n    from a.x import g\n    from . import w\n")
    (tmp_path / "b" / "w.py").write_text("from a import z\n")
    edges = module_imports(tmp_path, ("a", "b"))
    assert edges["b.y"] == {"a.x", "b", "b.w"}  # "from . import w" runs b/__init__.py too
    assert circles(edges) == [["a.x", "b.y"]]
    assert circles(package_edges(edges)) == [["a", "b"]]


SHIPPED = ("contract", "models", "export", "serving", "pipeline")
LONGEST = 60  # lines a function may span, docstring included, decorators not


def long_functions(root: Path, packages=SHIPPED, limit: int = LONGEST) -> list[str]:
    """``path:line name (lines)`` of every function or method of ``packages`` longer than ``limit``."""
    out = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > limit:
                        out.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({lines})")
    return out


def test_no_shipped_function_is_longer_than_60_lines():
    assert long_functions(ROOT) == [], "split these at their seams"


def test_the_length_rule_catches_a_long_method(tmp_path):
    (tmp_path / "p").mkdir()
    body = "\n".join(f"        x{i} = {i}" for i in range(60))
    (tmp_path / "p" / "m.py").write_text(
        f"class A:\n    def short(self):\n        pass\n\n    def long(self):\n{body}\n"
    )
    assert long_functions(tmp_path, ("p",)) == ["p/m.py:5 long (61)"]


def test_ruff_checks_complexity_of_the_shipped_packages():
    import tomllib

    lint = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    assert "C901" in lint["select"]
    ignored = {pattern for pattern, rules in lint.get("per-file-ignores", {}).items() if "C901" in rules}
    assert not any(pattern.split("/")[0] in SHIPPED for pattern in ignored)
