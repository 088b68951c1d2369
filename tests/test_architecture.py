"""The library's architecture, checked on its source: the layers that vae_lib/__init__.py's docstring
lists (the package's front page) are the design — every module sits in exactly one, imports only from
its own layer or those listed before it (never upward), no imports form a cycle, and api.md documents
the modules in the layers' order."""

import ast
import re
from pathlib import Path

import vae_lib

LIB = Path(vae_lib.__file__).parent
ROOT = LIB.parent


def layers() -> list[list[str]]:
    """The front page's bullets, in order, each a list of its ``module`` names."""
    bullets = re.split(r"\n- ", vae_lib.__doc__.split("\n\n- ", 1)[1].split("\n\n")[0])
    return [re.findall(r"``(\w+)``", re.sub(r"\([^)]*\)", "", b)) for b in bullets]   # not the notes in parentheses


def imports(module: str) -> set[str]:
    """The vae_lib modules ``module`` imports, at module level or inside a function."""
    found = set()
    for node in ast.walk(ast.parse((LIB / f"{module}.py").read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                found |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
            elif node.module and node.module.startswith("vae_lib."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("vae_lib.")}
    return found - {module}


def test_every_module_sits_in_one_layer():
    listed = [m for layer in layers() for m in layer]
    modules = sorted(p.stem for p in LIB.glob("*.py") if p.stem != "__init__")
    assert len(layers()) >= 6
    assert sorted(listed) == modules, (set(modules) ^ set(listed), [m for m in listed if listed.count(m) > 1])


def upward_imports(graph: dict[str, set[str]], level: dict[str, int]) -> list[str]:
    return [f"{m} (layer {level[m]}) imports {t} (layer {level[t]})" for m in graph for t in sorted(graph[m])
            if level[t] > level[m]]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle a depth-first search meets (none: the import graph is a DAG)."""
    state, found = {}, []

    def visit(m, path):
        state[m] = "open"
        for t in sorted(graph[m]):
            if state.get(t) == "open":
                found.append(path[path.index(t):] + [t])
            elif t not in state:
                visit(t, path + [t])
        state[m] = "done"

    for m in graph:
        if m not in state:
            visit(m, [m])
    return found


def library_graph() -> tuple[dict[str, set[str]], dict[str, int]]:
    level = {m: i for i, layer in enumerate(layers()) for m in layer}
    return {m: imports(m) for m in level}, level


def test_no_module_imports_from_a_later_layer():
    graph, level = library_graph()
    assert upward_imports(graph, level) == []


def test_the_imports_form_no_cycle():
    assert cycles(library_graph()[0]) == []


def test_the_checks_can_fail(tmp_path, monkeypatch):
    """A planted upward import and a planted cycle (one of them a function-level import) are found."""
    fake = tmp_path / "vae_lib"
    fake.mkdir()
    (fake / "a.py").write_text("from .b import x\n")
    (fake / "b.py").write_text("def f():\n    from vae_lib.a import y\n")
    monkeypatch.setitem(globals(), "LIB", fake)
    graph = {m: imports(m) for m in ("a", "b")}
    assert graph == {"a": {"b"}, "b": {"a"}}
    assert cycles(graph) == [["a", "b", "a"]]
    assert upward_imports(graph, {"a": 0, "b": 1}) == ["a (layer 0) imports b (layer 1)"]


def test_api_md_documents_the_modules_in_the_layers_order():
    api = (ROOT / "api.md").read_text()
    documented = re.findall(r"automodule:: vae_lib\.(\w+)\n", api)
    assert documented == [m for layer in layers() for m in layer]
