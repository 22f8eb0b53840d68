"""The package's layering: no cycles between its packages, and the imports each layer must not make.

Each import check runs in a fresh interpreter (``sys.modules`` of this one holds whatever
earlier tests imported); the cycle check reads every ``import`` of every module, those
inside functions included (a late import is still a dependency).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "vidwatch"


def _loaded_after(modules: list[str]) -> set[str]:
    """The modules a fresh interpreter has loaded after importing ``modules``."""
    code = (f"import importlib, json, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(out.stdout))


def _modules_of(package: str) -> list[str]:
    folder = PACKAGE / package
    return sorted(
        "vidwatch." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
        for path in folder.rglob("*.py")
    )


FORBIDDEN = [  # what is imported (a package, with all its modules), what must not be loaded after it
    (["vidwatch.config"], ["numpy", "cv2", "vidwatch.analyzers", "vidwatch.stages", "vidwatch.engines"]),
    (_modules_of("results"), ["vidwatch.engines", "vidwatch.tasks", "vidwatch.daemon", "vidwatch.api"]),
    (_modules_of("ops"), ["vidwatch.daemon", "vidwatch.api"]),
    (_modules_of("api"), ["vidwatch.daemon", "vidwatch.engines", "cv2"]),
    (_modules_of("daemon"), ["vidwatch.engines", "cv2", "vidwatch.analyzers", "vidwatch.stages"]),
    (["vidwatch.errors", "vidwatch.detection", "vidwatch.status", "vidwatch.registry", "vidwatch.fileio"],
     ["vidwatch.config", "redis", "numpy", "cv2"]),
]


@pytest.mark.parametrize(("imported", "forbidden"), FORBIDDEN, ids=lambda v: v[0] if isinstance(v, list) else None)
def test_a_layer_does_not_load_what_it_must_not(imported: list[str], forbidden: list[str]) -> None:
    loaded = _loaded_after(imported)
    wrong = sorted(m for m in loaded if any(m == f or m.startswith(f + ".") for f in forbidden))
    assert not wrong, f"importing {imported[0]}…: expected none of {forbidden}, got {wrong}"


def package_graph() -> dict[str, set[str]]:
    """vidwatch's first-level packages and modules, each with those it imports (anywhere in its code)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        source = parts[0]  # a first-level package, or a first-level module
        targets = graph.setdefault(source, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module == "vidwatch":
                    names = [f"vidwatch.{alias.name}" for alias in node.names]
                else:
                    names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name.startswith("vidwatch."):
                    target = name.split(".")[1]
                    if target != source:
                        targets.add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one node (Tarjan).

    >>> cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}})
    [['a', 'b']]
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_packages_import_each_other_without_cycles() -> None:
    graph = package_graph()
    assert {"daemon", "tasks", "results", "api", "ops", "config"} <= set(graph)
    assert cycles(graph) == []


def test_the_cycle_finder_sees_a_cycle_through_three_packages() -> None:
    assert cycles({"daemon": {"api"}, "api": {"ops"}, "ops": {"daemon"}, "config": set()}) == [["api", "daemon", "ops"]]
