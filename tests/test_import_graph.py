"""The layout's rules, checked on the source: every import points down.

The graph is built from the source with `ast` (every import statement, at module level or inside a
function: a lazy import is still a dependency), over `portal/`, `tasks/` and `tables/`.

Run as a script to print the graph's cycles and the rule breaks:
    python -m tests.test_import_graph
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("portal", "tasks", "tables", "demo")
# What starts processes: the command line (which loads the demo gym on request), the runner and the
# app (which build the worker). Everything else imports downwards only.
ENTRY_POINTS = {"portal.cli", "portal.runner", "portal.app"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        base = ROOT / package
        if not base.is_dir():
            continue
        for path in base.rglob("*.py"):
            if "piccolo_migrations" in path.parts:
                continue
            found[_module_name(path)] = path
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest known module that `name` names (a.b.c may be a module or a name in a.b)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name if is_package else name.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        anchor = anchor.rpartition(".")[0]
                    base = f"{anchor}.{base}" if base else anchor
                targets = [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                resolved = _resolve(target, modules)
                if resolved and resolved != name:
                    graph[name].add(resolved)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def rule_breaks(graph: dict[str, set[str]]) -> list[str]:
    breaks = []
    for source, targets in sorted(graph.items()):
        for target in sorted(targets):
            if source.startswith("tables") and not target.startswith("tables"):
                breaks.append(f"{source} -> {target}: tables/ imports nothing of the app")
            if source.startswith("portal.sandbox") and not target.startswith("portal.sandbox"):
                breaks.append(f"{source} -> {target}: the sandbox imports nothing of the portal")
            if source.startswith(("portal", "tables", "tasks")) and target.startswith("demo") and source not in ENTRY_POINTS:
                breaks.append(f"{source} -> {target}: the app does not import the demo")
            if source.startswith("portal") and target.startswith("tasks") and source not in ENTRY_POINTS:
                breaks.append(f"{source} -> {target}: jobs call the domain, not the other way round")
    return breaks


def test_the_graph_is_built_from_the_whole_source():
    graph = import_graph()
    # A sanity floor: the graph must see the app's modules and their imports, or "no cycle" means nothing.
    assert len(graph) > 80
    assert "portal.payments.state" in graph
    assert sum(len(targets) for targets in graph.values()) > 300


def test_no_import_cycles():
    found = cycles(import_graph())
    assert found == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_imports_point_down():
    assert rule_breaks(import_graph()) == []


def test_only_the_state_machine_writes_payments_and_their_events():
    """portal/payments/state.py is the one writer: no other module inserts a payment or an event."""
    writers = []
    for path in (ROOT / "portal").rglob("*.py"):
        if path == ROOT / "portal" / "payments" / "state.py" or "sandbox" in path.parts:
            continue
        text = path.read_text()
        if "PaymentEvent(" in text or "INSERT INTO payment " in text or "Payment.insert(" in text:
            writers.append(str(path.relative_to(ROOT)))
    assert writers == []


def test_a_planted_cycle_is_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


if __name__ == "__main__":
    graph = import_graph()
    found = cycles(graph)
    print(f"{len(graph)} modules, {sum(len(t) for t in graph.values())} imports, {len(found)} cycles")
    for component in found:
        print("cycle:", " <-> ".join(component))
    for line in rule_breaks(graph):
        print("rule:", line)
