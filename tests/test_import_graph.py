"""The import graph of lib/xenha and lib/xenha_lab, read from the source (AST): no
cycles, the product never imports the lab, and the low layers of the product stand on
the standard library and the layers below them only (names < ocf < hypervisor < tools < agents: the name grammar stands on the standard library alone; the domain records are the xl driver's result types).

Every import counts wherever it is written (module level or inside a function), relative
or absolute, and so do `__import__("x.y")` / `importlib.import_module("x.y")` calls with
a literal name: a lazy import postpones a cycle, it does not remove it. Importing
`a.b.c` runs the packages `a` and `a.b` too, so those are edges as well (except the
importer's own packages, which are necessarily running already).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from conftest import REPO

LIB = REPO / "lib"
ROOTS = ("xenha", "xenha_lab")
# each layer may import itself and the layers before it (and the bare `xenha` package)
LAYERS = ("xenha.names", "xenha.ocf", "xenha.hypervisor", "xenha.tools", "xenha.agents")
# Known breaks of that order, each with why it is there and where it goes away. The test
# fails when one is gone, so that its entry goes too; a new break fails as any other.
KNOWN_LAYER_BREAKS: dict[str, str] = {}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(LIB).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_of(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def modules() -> dict[str, Path]:
    found = {}
    for root in ROOTS:
        for path in sorted((LIB / root).rglob("*.py")):
            found[module_name(path)] = path
    return found


def imported_names(source: str, package: str, known) -> set[str]:
    """Dotted names a module of `package` imports (`from pkg import x` resolved to the
    module pkg.x when `known` has it, else to pkg)."""
    tree = ast.parse(source)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                child = f"{target}.{alias.name}"
                names.add(child if child in known else target)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if called in ("__import__", "import_module"):
                names.add(node.args[0].value)
    return names


def graph():
    """{module: set of internal modules it imports}, {module: set of external top-level names}."""
    known = modules()
    internal: dict[str, set[str]] = {}
    external: dict[str, set[str]] = {}
    for name, path in known.items():
        own = set()
        parts = package_of(name, path).split(".")
        own.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
        edges, outside = set(), set()
        for target in imported_names(path.read_text(encoding="utf-8"), package_of(name, path), known):
            top = target.split(".")[0]
            if top not in ROOTS:
                outside.add(top)
                continue
            pieces = target.split(".")
            for i in range(1, len(pieces) + 1):
                prefix = ".".join(pieces[:i])
                if prefix in known and (prefix == target or prefix not in own):
                    edges.add(prefix)
            if target not in known:
                # `from pkg import name` of a name defined in pkg/__init__ was resolved to pkg
                assert any(target.startswith(k + ".") or target == k for k in known), \
                    f"{name} imports {target}, which is not a module of lib/"
        edges.discard(name)
        internal[name], external[name] = edges, outside
    return internal, external


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Per strongly connected component of more than one module (Tarjan, iterative):
    one shortest cycle through its first module, first repeated at the end."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(component)
    found = []
    for component in components:
        first = min(component)
        # shortest path back to `first` inside the component (breadth first)
        previous, frontier = {first: None}, [first]
        while frontier and first not in [c for n in frontier for c in edges[n]]:
            nxt = []
            for node in frontier:
                for child in sorted(edges[node] & component):
                    if child not in previous:
                        previous[child] = node
                        nxt.append(child)
            frontier = nxt
        last = next(n for n in frontier if first in edges[n])
        path = [last]
        while previous[path[-1]] is not None:
            path.append(previous[path[-1]])
        found.append(path[::-1] + [first])
    return found


def layer_of(name: str):
    for i, layer in enumerate(LAYERS):
        if name == layer or name.startswith(layer + "."):
            return i
    return None


def test_the_import_graph_has_no_cycles():
    internal, _ = graph()
    found = cycles(internal)
    assert not found, "import cycles:\n" + "\n".join(
        "  " + " -> ".join(cycle) + "\n    (all of them in the loop: "
        + ", ".join(sorted(strongly_connected(internal, cycle[0]))) + ")" for cycle in found)


def strongly_connected(edges, start) -> set[str]:
    """The modules reachable from `start` that reach it back."""
    def reach(graph_, origin):
        seen, todo = {origin}, [origin]
        while todo:
            for child in graph_.get(todo.pop(), ()):
                if child not in seen:
                    seen.add(child)
                    todo.append(child)
        return seen
    reverse: dict[str, set[str]] = {}
    for node, children in edges.items():
        for child in children:
            reverse.setdefault(child, set()).add(node)
    return reach(edges, start) & reach(reverse, start)


def test_the_product_never_imports_the_lab():
    internal, _ = graph()
    wrong = sorted(f"{name} -> {target}" for name, targets in internal.items() if name.split(".")[0] == "xenha"
                   for target in targets if target.split(".")[0] == "xenha_lab")
    assert not wrong, "xenha imports xenha_lab:\n  " + "\n  ".join(wrong)


def test_low_layers_import_the_standard_library_and_lower_layers_only():
    internal, external = graph()
    wrong = []
    for name in sorted(internal):
        layer = layer_of(name)
        if layer is None:
            continue
        for target in sorted(internal[name]):
            other = layer_of(target)
            if target != "xenha" and (other is None or other > layer):
                wrong.append(f"{name} -> {target}")
        for top in sorted(external[name]):
            if top not in sys.stdlib_module_names:
                wrong.append(f"{name} -> {top} (not standard library)")
    new = [edge for edge in wrong if edge not in KNOWN_LAYER_BREAKS]
    assert not new, f"layers {' < '.join(LAYERS)} broken:\n  " + "\n  ".join(new)
    gone = sorted(set(KNOWN_LAYER_BREAKS) - set(wrong))
    assert not gone, "no longer true, remove from KNOWN_LAYER_BREAKS: " + ", ".join(gone)


def test_the_checks_see_what_they_must_see():
    """The reading of imports and the cycle search are right on known inputs, and the
    real graph is not empty, so that the checks above cannot pass by seeing nothing."""
    known = {"p", "p.a", "p.b", "p.sub", "p.sub.c"}
    source = ("import os\nfrom . import a\nfrom .sub import c\n"
              "def f():\n    from p.b import name\n    __import__('p.sub')\n")
    assert imported_names(source, "p", known) == {"os", "p.a", "p.sub.c", "p.b", "p.sub"}
    assert imported_names("from .. import a\nfrom ..b import x\n", "p.sub", known) == {"p.a", "p.b"}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    internal, external = graph()
    assert len(internal) > 50
    assert "xenha.ocf.codes" in internal["xenha_lab.cli"]
    assert "xenha.cluster" in internal["xenha_lab.demo_agents"]          # imported inside a function
    assert "shutil" in external["xenha_lab.bench"]               # likewise
