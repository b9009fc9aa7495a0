"""The house's import direction, read from the source (no import runs).

api, imports -> monitoring -> licenses -> specializations -> common; config is the
top of the house and no app imports it; nothing imports api or imports; no module
imports an admin module except another admin module (a background task calls
services); and no import circle between modules. Imports inside functions count
as much as those at the top: a lazy import hides a circle, it does not remove it.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Lower number, lower layer: a package may import its own modules and lower layers only.
LAYERS = {
    "common": 0,
    "specializations": 1,
    "licenses": 2,
    "monitoring": 3,
    "api": 4,
    "imports": 4,
    "config": 5,
}
# The top: nothing below may import them (config's URLconf includes api by name).
NEVER_IMPORTED = {"api", "imports", "config"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in LAYERS:
        for path in sorted((ROOT / package).rglob("*.py")) if (ROOT / package).is_dir() else []:
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def _resolve(importer: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    is_package = MODULES[importer].name == "__init__.py"
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str) -> set[str]:
    """Every module of the house that ``module`` imports, at any depth of its code."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            for alias in node.names:
                # ``from . import services`` imports a module; ``from .models import X`` a name.
                names.add(
                    f"{target}.{alias.name}" if f"{target}.{alias.name}" in MODULES else target
                )
    return {name for name in names if name.split(".")[0] in LAYERS and name != module}


GRAPH = {module: _imports(module) for module in MODULES}


def _package(module: str) -> str:
    return module.split(".")[0]


def _is_admin(module: str) -> bool:
    return any(part == "admin" or part.startswith("admin_") for part in module.split("."))


def test_the_house_is_read():
    # The checks below are only as good as the graph: every layer that exists is in it.
    assert {"common", "specializations", "licenses", "monitoring", "config"} <= {
        _package(m) for m in MODULES
    }
    assert "monitoring.admin.desync_cases" in GRAPH["monitoring.admin"]


def test_imports_go_down_the_layers_only():
    upward = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if _package(target) != _package(module)
        and LAYERS[_package(target)] >= LAYERS[_package(module)]
    )
    assert upward == []


def test_nothing_imports_config_api_or_imports():
    found = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if _package(target) in NEVER_IMPORTED and _package(target) != _package(module)
    )
    assert found == []


def test_common_imports_no_app():
    found = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if _package(module) == "common"
        for target in targets
        if _package(target) != "common"
    )
    assert found == []


def test_only_admin_modules_import_admin_modules():
    found = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if not _is_admin(module)
        for target in targets
        if _is_admin(target)
    )
    assert found == []


def _circles() -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module (or a self-import)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in GRAPH.get(module, ()):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    return found


def test_no_import_circles():
    assert _circles() == []


def test_the_repair_task_imports_no_admin_module():
    tasks = [module for module in MODULES if module.split(".")[-1] == "tasks"]
    assert tasks
    found = sorted(
        f"{module} imports {target}"
        for module in tasks
        for target in _imports(module)
        if _is_admin(target)
    )
    assert found == []
