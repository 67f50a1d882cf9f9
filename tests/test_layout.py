"""The package's layout holds: each wing imports only from itself and the wings below it in the
flow of data, so no import circle can form between wings, and nothing imports the CLI's entry."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "runner"

# From the bottom up: a module may import from its own wing and any wing listed before it.
FLOW = (
    "errors",
    "version",
    "files",
    "spec",
    "providers",
    "check",
    "send",
    "grade",
    "runs",
    "results",
)
TOP = {"api", "__init__", "__main__", "cli"}  # may import anything (cli: not from cli.main)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every ``from runner... import`` and ``import runner...`` in a file,
    including imports inside functions and TYPE_CHECKING blocks."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("runner"):
            if node.module == "runner":
                found += [(node.lineno, f"runner.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("runner.")]
    return found


def wing_of(module: str) -> str:
    return module.split(".")[1]


def test_no_module_imports_from_a_wing_above_it():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        wing = path.relative_to(PACKAGE).with_suffix("").parts[0]
        if wing in TOP:
            continue
        allowed = FLOW[: FLOW.index(wing) + 1]
        for line, module in imports_of(path):
            if wing_of(module) not in allowed:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line}: imports {module}")
    assert upward == [], "a wing imports from one above it; move what both need down"


def test_every_module_belongs_to_a_known_wing():
    wings = {path.relative_to(PACKAGE).with_suffix("").parts[0] for path in PACKAGE.rglob("*.py")}
    assert wings <= set(FLOW) | TOP


def test_nothing_imports_the_cli_entry_module():
    importers = [
        str(path.relative_to(PACKAGE.parent))
        for path in PACKAGE.rglob("*.py")
        if path.name != "__main__.py"
        and any(module == "runner.cli.main" for _, module in imports_of(path))
    ]
    assert importers == []


def test_at_most_eight_modules_at_the_top():
    assert len(list(PACKAGE.glob("*.py"))) <= 8


def module_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_two_modules_import_each_other_even_inside_a_function():
    """Within a wing too: a circle of modules (even through an import inside a function) means
    what both need belongs in a third module below them, or is handed in as a parameter."""
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        graph[module_of(path)] = {module for _, module in imports_of(path)}
    circles = []
    for start in graph:
        seen: set[str] = set()
        stack = [(start, (start,))]
        while stack:
            module, trail = stack.pop()
            for target in graph.get(module, ()):
                if target == start and len(trail) > 1:
                    circles.append(" -> ".join((*trail, start)))
                elif target not in seen and target in graph and target > start:
                    seen.add(target)
                    stack.append((target, (*trail, target)))
    assert circles == [], "modules import each other: " + "; ".join(circles)
