"""The library's architecture, checked on its source: the layers that vae_lib/__init__.py's docstring
lists (the package's front page) are the design and its folders — one sub-package per layer, every module
in exactly one, importing only from its own layer or those listed before it (never upward), no imports
forming a cycle, and api.md documenting the modules in the layers' order."""

import ast
import re
from pathlib import Path

import vae_lib

LIB = Path(vae_lib.__file__).parent
ROOT = LIB.parent


def layers() -> list[tuple[str, list[str]]]:
    """The front page's bullets, in order, each as (its sub-package, the ``package.module`` names it lists)."""
    bullets = re.split(r"\n- ", vae_lib.__doc__.split("\n\n- ", 1)[1].split("\n\n")[0])
    found = []
    for b in bullets:
        package, *modules = re.findall(r"``(\w+)``", re.sub(r"\([^)]*\)", "", b))   # not the notes in parentheses
        found.append((package, [f"{package}.{m}" for m in modules]))
    return found


def imports(module: str) -> set[str]:
    """The vae_lib modules (``package.module``) that ``module`` imports, at module level or in a function."""
    package = module.split(".")[0]
    found = set()
    for node in ast.walk(ast.parse((LIB / f"{module.replace('.', '/')}.py").read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                found |= {f"{package}.{node.module}"} if node.module else {f"{package}.{a.name}" for a in node.names}
            elif node.module and node.module.startswith("vae_lib."):
                parts = node.module.split(".")
                found |= {".".join(parts[1:3])} if len(parts) > 2 else {f"{parts[1]}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {".".join(a.name.split(".")[1:3]) for a in node.names if a.name.startswith("vae_lib.")}
    return found - {module}


def test_every_module_sits_in_one_layer_and_each_layer_is_a_folder():
    listed = [m for _, layer in layers() for m in layer]
    modules = sorted(f"{p.parent.name}.{p.stem}" for p in LIB.glob("*/*.py") if p.stem != "__init__")
    assert len(layers()) >= 6
    assert sorted(listed) == modules, (set(modules) ^ set(listed), [m for m in listed if listed.count(m) > 1])
    assert [p.name for p in LIB.glob("*.py")] == ["__init__.py"], "a module outside the layers' folders"
    assert sorted(p.parent.name for p in LIB.glob("*/__init__.py")) == sorted(package for package, _ in layers())


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
    level = {m: i for i, (_, layer) in enumerate(layers()) for m in layer}
    return {m: imports(m) for m in level}, level


def test_no_module_imports_from_a_later_layer():
    graph, level = library_graph()
    assert upward_imports(graph, level) == []


def test_the_imports_form_no_cycle():
    assert cycles(library_graph()[0]) == []


def test_the_checks_can_fail(tmp_path, monkeypatch):
    """A planted upward import and a planted cycle (one of them a function-level import) are found."""
    fake = tmp_path / "vae_lib"
    (fake / "p").mkdir(parents=True)
    (fake / "q").mkdir()
    (fake / "p" / "a.py").write_text("from vae_lib.q.b import x\n")
    (fake / "q" / "b.py").write_text("def f():\n    from vae_lib.p import a\n")
    monkeypatch.setitem(globals(), "LIB", fake)
    graph = {m: imports(m) for m in ("p.a", "q.b")}
    assert graph == {"p.a": {"q.b"}, "q.b": {"p.a"}}
    assert cycles(graph) == [["p.a", "q.b", "p.a"]]
    assert upward_imports(graph, {"p.a": 0, "q.b": 1}) == ["p.a (layer 0) imports q.b (layer 1)"]


def test_api_md_documents_the_modules_in_the_layers_order():
    api = (ROOT / "api.md").read_text()
    documented = re.findall(r"automodule:: vae_lib\.(\w+\.\w+)\n", api)
    assert documented == [m for _, layer in layers() for m in layer]


def test_the_readme_draws_the_folders_in_the_layers_order():
    """README.md's tree of vae_lib shows the layers' folders, in the front page's order."""
    drawn = re.findall(r"^[├└]── (\w+)/", (ROOT / "README.md").read_text(), re.M)
    assert drawn == [package for package, _ in layers()]
