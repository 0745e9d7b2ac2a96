"""The package's layers, read from the source with ``ast``: imports point down only.

A module may import its own layer and any layer below it, never one above; no
two modules, and no two packages, import each other (directly or round a loop);
web and CLI frameworks are imported only by the edges. Imports inside functions
count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

# Top to bottom. A name covers the module and everything under it; the most
# specific name wins (``qa`` itself is only ``qa/__init__.py``).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # ``qa`` itself (``qa/__init__.py``) is the Python API: ``from qa import Collection``.
    ("edges", ("qa.cli", "qa.api", "qa.mcp", "qa.bench", "qa.collection", "qa")),
    ("evaluation", ("qa.evaluation",)),
    ("serving", ("qa.batching", "qa.cache", "qa.schemas")),
    ("service", ("qa.service",)),
    ("ranking", ("qa.retrieval",)),
    ("indexing", ("qa.indexing",)),
    ("storage", ("qa.store",)),
    (
        "basics",
        (
            "qa.readers",
            "qa.chunking",
            "qa.embedding",
            "qa.embedding_onnx",
            "qa.keywords",
            "qa.offsets",
            "qa.types",
            "qa.config",
            "qa.errors",
            "qa.version",
        ),
    ),
]
EDGE_ONLY = ("fastapi", "typer", "rich", "uvicorn", "starlette", "mcp")

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "qa"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> Iterator[str]:
    """Every name ``path`` imports (absolute), wherever the import statement is.

    ``from a.b import c`` gives ``a.b.c``: ``c`` may be a module or a name in ``a.b``.
    """
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                assert node.module is not None
                source = node.module
            yield from (f"{source}.{alias.name}" for alias in node.names)


def graph() -> dict[str, set[str]]:
    """``qa`` module -> the ``qa`` modules it imports (names resolved to existing modules)."""
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    out: dict[str, set[str]] = {}
    for name, path in paths.items():
        targets = set()
        for target in imports(path):
            if target == "qa" or target.startswith("qa."):
                # ``qa.x.y`` is the module ``qa.x.y`` if it exists, else a name in ``qa.x``.
                while target not in paths and "." in target:
                    target = target.rpartition(".")[0]
                if target != name:
                    targets.add(target)
        out[name] = targets
    return out


def layer_of(module: str) -> int:
    best: tuple[int, int] | None = None  # (length of the matching name, layer)
    for number, (_, names) in enumerate(LAYERS):
        for prefix in names:
            if (module == prefix or module.startswith(prefix + ".")) and prefix != "qa":
                if best is None or len(prefix) > best[0]:
                    best = (len(prefix), number)
            elif prefix == "qa" and module == "qa":
                best = (2, number)
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")
    return best[1]


def unit(module: str) -> str:
    """A module's package for the package-cycle check: ``qa.store.faiss.store`` -> ``qa.store``."""
    parts = module.split(".")
    return ".".join(parts[:2])


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                group.append(item)
                if item == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_every_module_is_in_a_layer() -> None:
    for module in graph():
        layer_of(module)


def test_imports_point_down_only() -> None:
    upward = [
        f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for module, targets in sorted(graph().items())
        for target in sorted(targets)
        if layer_of(target) < layer_of(module)
    ]
    assert upward == []


def test_no_module_import_cycles() -> None:
    assert cycles(graph()) == []


def test_no_package_import_cycles() -> None:
    packages: dict[str, set[str]] = {}
    for module, targets in graph().items():
        packages.setdefault(unit(module), set()).update(
            unit(t) for t in targets if unit(t) != unit(module)
        )
    assert cycles(packages) == []


def test_frameworks_only_at_the_edges() -> None:
    edges = LAYERS[0][1]
    offenders = [
        f"{module_name(path)} imports {target}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if not any(module_name(path) == e or module_name(path).startswith(e + ".") for e in edges)
        for target in imports(path)
        if target.split(".")[0] in EDGE_ONLY
    ]
    assert offenders == []


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": set()}, []),
    ],
)
def test_the_cycle_finder_finds_loops(
    edges: dict[str, set[str]], expected: list[list[str]]
) -> None:
    assert cycles(edges) == expected


def test_the_layer_check_sees_an_upward_import() -> None:
    """Guard against a check that cannot fail: the store must sit below indexing and ranking."""
    assert layer_of("qa.store.faiss.store") > layer_of("qa.indexing.pipeline")
    assert layer_of("qa.store.memory") > layer_of("qa.retrieval.rankers")
    assert layer_of("qa.api.app") < layer_of("qa.service")
    assert layer_of("qa") == 0, "qa/__init__.py is the Python API, an edge"
    assert layer_of("qa.version") == len(LAYERS) - 1
