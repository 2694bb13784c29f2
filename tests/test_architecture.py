"""The package's layers, read from its source: which module may import which (ARCHITECTURE.md).

    ner/          the research core: config, data/, features, model, heads, loss, optimization,
                  batching, evaluate, metrics, checkpoint, distributed/; and the loop that uses
                  them (prepare, train, finish)
    ner/run/      the machinery of a run (command line, run directory, lock, preemption, checks)
    ner/report/   what a run leaves for people (log, card, curves, tables)
    ner/tools/    the commands on a trained run (ner-evaluate, ner-predict, ner-report)
    ner/demo/     the generated demo languages

Every import counts, at the top of a module or inside a function, except those under
`if TYPE_CHECKING:` (never run) and `if __name__ == "__main__":` (run as a script, the module is
`__main__`, not itself).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "ner"
LOOP = {"ner.train", "ner.prepare", "ner.finish"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _skipped(node: ast.If) -> bool:
    test = ast.unparse(node.test)
    return test in ("TYPE_CHECKING", "typing.TYPE_CHECKING") or test.startswith("__name__ ==")


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The package's modules that `path` imports (a `from ner import x` of a module names x)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _skipped(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "ner")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "ner":
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in known else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in found if m in known}


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(path, set(mods)) - {name} for name, path in mods.items()}


def layer(module: str) -> str:
    """core, loop, run, report, tools or demo."""
    if module in LOOP:
        return "loop"
    for folder in ("run", "report", "tools", "demo"):
        if module.startswith(f"ner.{folder}.") or module == f"ner.{folder}":
            return folder
    return "core"


# What each layer may import, besides its own modules.
ALLOWED = {
    "demo": {"core"},  # ner.errors only, below
    "core": {"demo"},  # the demo is a data source
    "report": {"core"},
    "run": {"core", "report"},
    "loop": {"core", "run", "report"},
    "tools": {"core", "run", "report"},
}


def test_every_import_goes_down_a_layer_or_stays_in_its_own():
    graph = import_graph()
    assert len(graph) > 40 and "ner.train" in graph and "ner.run.cli" in graph  # the real tree
    wrong = [
        f"{m} ({layer(m)}) imports {d} ({layer(d)})"
        for m, deps in sorted(graph.items())
        for d in sorted(deps)
        if layer(d) != layer(m) and layer(d) not in ALLOWED[layer(m)]
    ]
    demo = [
        f"{m} imports {d}"
        for m, deps in graph.items()
        if layer(m) == "demo"
        for d in deps
        if layer(d) != "demo" and d != "ner.errors"
    ]
    assert not wrong + demo, "\n".join(wrong + demo)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_cycles_finds_a_circle_and_no_false_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_no_import_circle():
    assert cycles(import_graph()) == []


def test_imports_under_type_checking_and_main_do_not_count(tmp_path):
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\nfrom ner import loss\n"
        "if TYPE_CHECKING:\n    from ner import train\n"
        "def f():\n    from ner.run import cli\n"
        "if __name__ == '__main__':\n    from ner.run.cli import main\n"
    )
    assert imports_of(source, {"ner.loss", "ner.train", "ner.run.cli"}) == {
        "ner.loss",
        "ner.run.cli",
    }
