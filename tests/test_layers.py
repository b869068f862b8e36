"""The library's layers: every import, lazy ones inside functions included, points down the order
below, and no group of modules imports itself in a cycle. Read from the source with ``ast``, so it
sees what a test run would not import. Imports under ``if TYPE_CHECKING:`` never run and are skipped;
a ``__main__`` module is an entry point that nothing imports, so it may reach any layer."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("crepe", "pho", "eval", "benchmarks")

# (module prefix, rank): a module may import only modules of a rank <= its own; the longest prefix wins
LAYERS = {
    "crepe.io": 0,
    "crepe.methods": 1,
    "crepe.config": 2,
    "crepe.data": 3, "crepe.models.adapters": 3, "crepe.models.loading": 3, "crepe.models": 3,
    "crepe.engine": 4, "crepe.evaluation": 5, "crepe.streaming": 5,
    "crepe.prune.linear": 6,
    "crepe.compose": 7,
    "crepe.prune": 8,
    "crepe.output": 9,
    "crepe.run": 10,
    "crepe.cli": 11,
    "crepe": 12,  # the package itself: crepe.oneshot
    "crepe.vit": 3,  # the ViT path stands apart: it reads only crepe.io
    "pho": 13, "eval": 13, "benchmarks": 13,  # eval: the repo's `python -m eval.*` shims over crepe.cli (not installed)
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def rank(module: str) -> int:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[best]


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(path: Path) -> set[str]:
    """Every first-party module ``path`` imports, at the top or inside a function."""
    module, found = module_name(path), set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        if _type_checking(node):
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)  # "from pkg import module"
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return {m for m in found if m.split(".")[0] in PACKAGES}


def graph() -> dict[str, set[str]]:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    modules = {module_name(p): p for p in files}
    edges = {}
    for name, path in modules.items():
        # keep only imports of real modules (a "from pkg import name" also yields pkg.name)
        edges[name] = {m for m in imports_of(path) if m in modules and m != name}
    return edges


def test_every_import_points_down_the_layers():
    wrong = [f"{a} (layer {rank(a)}) imports {b} (layer {rank(b)})"
             for a, deps in graph().items() if not a.endswith("__main__") for b in deps if rank(b) > rank(a)]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle():
    edges = {a: deps for a, deps in graph().items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def walk(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                walk(nxt, [*stack, nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            walk(start, [start])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_no_dynamic_imports_hide_an_edge():
    """importlib.import_module or __import__ of a computed name would hide an import from the checks above."""
    hidden = [str(p.relative_to(ROOT)) for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
              if any(isinstance(n, ast.Call) and ast.unparse(n.func).endswith(("import_module", "__import__"))
                     for n in ast.walk(ast.parse(p.read_text())))]
    assert not hidden, hidden


def test_crepe_root_holds_only_the_package_config_and_folders():
    loose = sorted(p.name for p in (ROOT / "crepe").glob("*.py") if p.name not in ("__init__.py", "config.py"))
    assert not loose, f"modules at the crepe root: {loose}"


def test_the_reader_sees_lazy_imports_and_skips_type_checking_ones():
    """The checks read imports inside functions (so a cycle cannot hide behind one) and skip the ones
    under ``if TYPE_CHECKING:``, which never run."""
    card = imports_of(ROOT / "crepe/output/card.py")  # base_model_id imports the loader inside the function
    assert "crepe.models.loading" in card
    sparsegpt = imports_of(ROOT / "crepe/methods/sparsegpt.py")  # PruneConfig for its annotations only
    assert "crepe.config" not in sparsegpt and "crepe.methods.declare" in sparsegpt
