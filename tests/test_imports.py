"""The package's modules import one another one way: no import cycles, counting imports inside
functions too (a lazy import is still an import). ``python tests/test_imports.py`` prints the graph."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "cyclegan_cli"


def _module_name(file: Path) -> str:
    parts = list(file.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the package's modules it imports anywhere in its body (module level or in a
    function). ``from a.b import c`` counts as importing ``a.b.c`` when that is a module, else ``a.b``.
    A parent package that Python runs on the way to a submodule is not counted: it is not a choice."""
    files = {_module_name(f): f for f in sorted(PKG.rglob("*.py"))}
    graph = {}
    for name, file in files.items():
        package = name if file.name == "__init__.py" else name.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in files:  # `import a.b.c` where only a.b is ours: a.b
                    t = t.rpartition(".")[0]
                if t and t != name:
                    deps.add(t)
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def format_graph(graph: dict[str, set[str]]) -> str:
    short = lambda m: m.replace("cyclegan_cli.", "", 1) if m != "cyclegan_cli" else "cyclegan_cli"  # noqa: E731
    return "\n".join(f"{short(m)} -> {', '.join(short(d) for d in sorted(graph[m])) or '-'}" for m in sorted(graph))


def test_the_helper_sees_function_level_imports():
    graph = import_graph()
    assert "cyclegan_cli.checkpoints" in graph["cyclegan_cli.zoo.resolve"]  # imported inside load()
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


# the layers, from the ground up (the house in STYLE.md); a module imports only from its own
# layer and below. The package root holds the version alone and counts as ground.
LAYERS = [("cyclegan_cli", "errors", "files", "device"), ("models", "data"), ("official",), ("checkpoints",),
          ("zoo",), ("train", "infer"), ("cli", "__main__")]


def layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else module
    return next(i for i, names in enumerate(LAYERS) if top in names)


def test_imports_go_down_the_layers():
    graph = import_graph()
    upward = [f"{m} -> {d}" for m in sorted(graph) for d in sorted(graph[m]) if layer(d) > layer(m)]
    assert not upward, upward


if __name__ == "__main__":
    print(format_graph(import_graph()))
    print("cycles:", cycles(import_graph()) or "none")
