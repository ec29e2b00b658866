"""The house rules of issue 14, checked on the source tree: imports follow the data flow, no
import cycles, nothing below cli/ imports cli/, and files stay small enough to read."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

import rosettamt

PACKAGE = Path(rosettamt.__file__).resolve().parent
MAX_LINES = 300
# Inference must not depend on training code (device/precision helpers live in rosettamt.device).
INFERENCE = ("rosettamt.model", "rosettamt.search", "rosettamt.checkpoint", "rosettamt.translate",
             "rosettamt.evaluate", "rosettamt.prompt", "rosettamt.viz", "rosettamt.device", "rosettamt.text")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> Dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, known: Set[str]) -> Set[str]:
    """rosettamt modules imported anywhere in the file (function-level imports included; imports
    under ``if TYPE_CHECKING:`` are skipped: they never run)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
            and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    found: Set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("rosettamt")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rosettamt"):
            for alias in node.names:  # `from rosettamt import config` imports the module rosettamt.config
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in known else node.module)
    return found & known


def import_graph() -> Dict[str, Set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports_of(path, known) - {name} for name, path in mods.items()}


def is_entry_point(name: str) -> bool:
    return name.startswith("rosettamt.cli") or name.endswith("__main__")


def test_nothing_below_cli_imports_cli():
    offenders = {name: sorted(d for d in deps if d.startswith("rosettamt.cli"))
                 for name, deps in import_graph().items() if not is_entry_point(name)}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_inference_code_does_not_import_training_code():
    graph = import_graph()
    offenders = {name: sorted(d for d in deps if d.startswith("rosettamt.train"))
                 for name, deps in graph.items() if name.startswith(INFERENCE)}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_no_import_cycles():
    """A cycle through package __init__ re-exports counts too; __main__ modules are entry points."""
    graph = {n: {d for d in deps if not d.endswith("__main__")} for n, deps in import_graph().items()
             if not n.endswith("__main__")}
    cycles: List[List[str]] = []
    state: Dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, path: List[str]) -> None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(path[path.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, path + [dep])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_modules_stay_small():
    too_long = {name: n for name, path in modules().items()
                if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert too_long == {}


def test_the_checks_see_the_imports():
    """Guard the guard: the graph finds known edges, function-level ones included."""
    graph = import_graph()
    assert "rosettamt.model.cache" in graph["rosettamt.search.stepper"]
    assert "rosettamt.device" in graph["rosettamt.checkpoint.model_state"]  # imported inside a function
    assert "rosettamt.config" in graph["rosettamt.cli._app"]


def test_readme_layout_lists_every_module():
    """The README's layout section is the map a newcomer reads: no module may be missing from it."""
    readme = (PACKAGE.parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index("## Repository layout"):]
    block = block[: block.index("\n## ", 1)]
    missing = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
               if p.name not in ("__init__.py", "__main__.py") and p.name not in block]
    assert missing == []
