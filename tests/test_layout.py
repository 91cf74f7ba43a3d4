"""The folder tree is the architecture: packages import without cycles, and the hot path
imports only the standard library (and itself) at module level."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "tfwrap"

# Modules the shim's hot path may load before Terraform starts: standard library only at
# module level (a deferred import inside a function is the way to reach anything else).
HOT = ("tfwrap.shim", "tfwrap.findings")
HOT_MODULES = {
    "tfwrap",
    "tfwrap.terraform",
    "tfwrap.terraform.commands",
    "tfwrap.terraform.realbin",
    "tfwrap.terraform.handoff",
    "tfwrap.terraform.lockargs",
    "tfwrap.output",
    "tfwrap.schema",
    "tfwrap.exitcodes",
    "tfwrap.errors",
    "tfwrap.testhooks",
    "tfwrap.durations",
    "tfwrap.fs",
    "tfwrap.log",
}
# Package cycles that remain in code other work owns; each is a debt, not a design.
KNOWN_CYCLES: set[frozenset[str]] = set()


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(path: Path, name: str, *, module_level_only: bool) -> set[str]:
    """The tfwrap (and other) modules a file imports; with ``module_level_only``, not those
    inside functions or ``if TYPE_CHECKING`` blocks."""
    tree = ast.parse(path.read_text())
    nodes: list[ast.AST] = []
    if module_level_only:
        for node in tree.body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            nodes.append(node)
            if isinstance(node, ast.Try | ast.If):
                nodes.extend(ast.walk(node))
    else:
        typing_only = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for inner in ast.walk(node)
        }
        nodes = [node for node in ast.walk(tree) if id(node) not in typing_only]
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                kept = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*kept, base] if base else kept)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def package_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def test_hot_path_imports_only_the_standard_library_at_module_level() -> None:
    known = modules()
    offenders = []
    for name, path in known.items():
        if not (name.startswith(HOT) or name in HOT_MODULES):
            continue
        for imported in imports(path, name, module_level_only=True):
            top = imported.split(".")[0]
            if top == "tfwrap":
                if imported in known and not (imported.startswith(HOT) or imported in HOT_MODULES):
                    offenders.append(f"{name} -> {imported}")
            elif top not in sys.stdlib_module_names and top != "__future__":
                offenders.append(f"{name} -> {imported}")
    assert offenders == []


def test_no_import_cycle_between_packages() -> None:
    """Function-level imports count: a cycle hidden in one is still a cycle."""
    known = modules()
    edges: dict[str, set[str]] = {}
    for name, path in known.items():
        for imported in imports(path, name, module_level_only=False):
            if imported in known and imported != "tfwrap" and package_of(imported) != package_of(name):
                edges.setdefault(package_of(name), set()).add(package_of(imported))

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in edges.get(todo.pop(), set()) - seen:
                seen.add(nxt)
                todo.append(nxt)
        return seen

    reachable = {a: reach(a) for a in edges}
    cycles = {frozenset((a, b)) for a in reachable for b in reachable[a] if a in reachable.get(b, set())}
    assert cycles - KNOWN_CYCLES == set(), sorted(sorted(c) for c in cycles - KNOWN_CYCLES)
