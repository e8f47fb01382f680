"""The package's layers, read from its imports: no circle, nothing imports upward.

Bottom to top: the contracts, errors, file helpers and configuration; the ParallelCluster
tools; the stages and the account adapters (AWS, sandbox and plan); the pipeline and the
estimate it draws and prices; the invoke tasks. Imports needed only by the type checker
(under ``if TYPE_CHECKING:``) count too: a circle through them is still a circle. A stage does not import another stage, and an adapter imports
no stage and not the other adapter: the stages meet only through the contracts.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "pwbcluster"
LEVELS = (
    (0, ("errors", "contracts", "files", "progress", "config")),
    (1, ("pcluster",)),
    (2, ("stages", "aws", "sandbox")),
    # The estimate draws and prices a rendered deployment: a plan step's helper.
    # The lab runs the sandbox pipeline against its own moto, then stands the services
    # up beside it: a user of the pipeline, below the tasks.
    (3, ("pipeline", "estimate", "lab")),
    (4, ("tasks",)),
)


def modules(src: Path = SRC) -> dict[str, Path]:
    found = {}
    for path in sorted((src / PACKAGE).rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        if any("-" in p for p in parts):  # not importable (runs inside pcluster's venv)
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(name: str, path: Path, known: Iterable[str]) -> list[tuple[str, int]]:
    """Every pwbcluster module ``name`` imports, anywhere in the file, with its line."""
    known = set(known)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and target.startswith(PACKAGE):
                out.append((target, node.lineno))
    return sorted(set(out))


def level(name: str) -> tuple[int, str]:
    parts = name.split(".")
    top = parts[1] if len(parts) > 1 else ""
    for number, tops in LEVELS:
        if top in tops:
            return number, top
    return 0, top  # the package's own __init__


def stage_of(name: str) -> str | None:
    parts = name.split(".")
    if len(parts) > 2 and parts[1] == "stages" and (SRC / PACKAGE / "stages" / parts[2]).is_dir():
        return parts[2]
    return None


def violations(graph: dict[str, list[tuple[str, int]]]) -> list[str]:
    found = []
    for importer, targets in graph.items():
        lower, top = level(importer)
        for imported, line in targets:
            upper, other = level(imported)
            why = ""
            if upper > lower:
                why = "imports a higher layer"
            elif (
                top in ("aws", "sandbox") and other in ("stages", "aws", "sandbox") and top != other
            ):
                why = "an adapter imports a stage or the other adapter"
            elif (
                stage_of(importer)
                and stage_of(imported)
                and stage_of(importer) != stage_of(imported)
            ):
                why = "a stage imports another stage"
            if why:
                found.append(f"{importer} -> {imported} (line {line}): {why}")
    return found


def cycles(graph: dict[str, list[tuple[str, int]]]) -> list[list[str]]:
    edges = {n: sorted({t for t, _ in targets}) for n, targets in graph.items()}
    found: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in edges.get(node, []):
            if state.get(nxt) == 1:
                found.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def graph() -> dict[str, list[tuple[str, int]]]:
    mods = modules()
    return {name: imports(name, path, mods) for name, path in mods.items()}


def test_no_import_circle() -> None:
    assert cycles(graph()) == []


def test_no_module_imports_a_higher_layer_or_a_sibling_stage() -> None:
    assert violations(graph()) == []


def test_the_checker_sees_a_violation_and_a_circle() -> None:
    fake = {
        "pwbcluster.contracts": [("pwbcluster.stages.image.stage", 3)],
        "pwbcluster.stages.image.stage": [("pwbcluster.stages.cluster.stage", 4)],
        "pwbcluster.stages.cluster.stage": [("pwbcluster.contracts", 5)],
        "pwbcluster.sandbox.account": [("pwbcluster.stages.image.stage", 6)],
    }
    found = violations(fake)
    assert any("contracts -> pwbcluster.stages.image.stage" in v for v in found)
    assert any("another stage" in v for v in found)
    assert any("adapter" in v for v in found)
    assert cycles(fake)
