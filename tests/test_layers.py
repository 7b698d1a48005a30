"""The package layers of docs/architecture.md, checked on every module's imports (read with ast).

Bottom to top: kernels, dtypes, core, state (table, drivers), engine, steps (steps, aggregations),
io (sources, targets), app (cli, and the public facades). A module imports only from its own layer
or below; the kernels import nothing of storey outside the kernels. No storey import sits inside a
function to dodge a cycle: the only imports made on first use are the ones named in `LAZY`.
"""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "storey"

LAYERS = ["kernels", "dtypes", "core", "state", "engine", "steps", "io", "app"]
LAYER_OF = {
    "kernels": "kernels",
    "dtypes": "dtypes",
    "core": "core",
    "table": "state",
    "drivers": "state",
    "engine": "engine",
    "steps": "steps",
    "aggregations": "steps",
    "sources": "io",
    "targets": "io",
    "cli": "app",
    # tools for testing flows (the V3IO emulator): they may import anything, nothing imports them
    "testing": "app",
    "distributed": "app",
    # the public facades: `storey`, `storey.flow`, `storey.transformations`, `storey.utils`,
    # `storey.redis_driver`, `python -m storey`
    "__init__": "app",
    "flow": "app",
    "redis_driver": "app",
    "utils": "app",
    "transformations": "app",
    "__main__": "app",
}

# public facades named as the module whose names they give, at the import path storey's later
# releases use
FACADE_OF = {"redis_driver": ["storey.drivers.redis_driver", "storey.redis_driver"]}

# Imports made on first use, and why. Anything else of storey is imported at module level.
LAZY = {
    "storey.kernels": "Numba is imported, and the kernels compiled or loaded, only by flows that aggregate",
    "storey.targets.file_targets.float_text": "a Numba kernel: only long CSV jobs load Numba for it",
}
# The command line loads what a command needs when it runs, so that `storey --help` is quick.
LAZY_IMPORTERS = {"cli"}


def module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module):
    """The layer of an absolute module name under storey."""
    parts = module.split(".")
    return LAYER_OF[parts[1] if len(parts) > 1 else "__init__"]


def _imported_module(target, name):
    """`from target import name`: the module `name` when it is one (`from . import kernels`)."""
    path = PACKAGE.parent.joinpath(*target.split("."), name)
    return f"{target}.{name}" if path.is_dir() or path.with_suffix(".py").is_file() else target


def storey_imports(source, module, is_package):
    """(imported module, line, inside a function) for every import of storey in `source`."""
    package = module if is_package else module.rpartition(".")[0]
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - child.level + 1]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                if target == "storey" or target.startswith("storey."):
                    for alias in child.names:
                        found.append((_imported_module(target, alias.name), child.lineno, inside))
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name == "storey" or alias.name.startswith("storey."):
                        found.append((alias.name, child.lineno, inside))
            visit(child, inside)

    visit(ast.parse(source), False)
    return found


def violations(source, module, is_package=False):
    """What breaks the layer rules in the source of `module`."""
    importer = layer_of(module)
    top = module.split(".")[1] if "." in module else "__init__"
    out = []
    for target, line, inside in storey_imports(source, module, is_package):
        if (
            inside
            and top not in LAZY_IMPORTERS
            and not any(target == lazy or target.startswith(lazy + ".") for lazy in LAZY)
        ):
            out.append(f"{module}:{line} imports {target} inside a function (not a named lazy import)")
        layer = layer_of(target)
        if importer == "kernels" and layer != "kernels":
            out.append(f"{module}:{line}: a kernel imports {target}")
        elif LAYERS.index(layer) > LAYERS.index(importer):
            out.append(f"{module}:{line}: the {importer} layer imports {target} of the {layer} layer")
    return out


def modules():
    return sorted(PACKAGE.rglob("*.py"))


def test_every_module_keeps_to_its_layer():
    found = []
    for path in modules():
        found += violations(path.read_text(), module_name(path), path.name == "__init__.py")
    assert not found, "\n".join(found)


def test_nothing_in_the_library_imports_the_testing_tools():
    found = []
    for path in modules():
        module = module_name(path)
        if module.startswith("storey.testing"):
            continue
        for target, line, _ in storey_imports(path.read_text(), module, path.name == "__init__.py"):
            if target == "storey.testing" or target.startswith("storey.testing."):
                found.append(f"{module}:{line} imports {target}")
    assert not found, "\n".join(found)


def test_every_package_has_a_layer():
    tops = {module_name(path).split(".")[1] for path in modules() if module_name(path) != "storey"}
    assert tops <= set(LAYER_OF), f"packages without a layer: {sorted(tops - set(LAYER_OF))}"


def test_no_two_modules_share_a_name():
    names = {}
    for path in modules():
        name = path.parent.name if path.name == "__init__.py" else path.stem
        names.setdefault(name, []).append(module_name(path))
    # (`python -m storey` and `python -m storey.testing.v3io` each need a __main__)
    shared = {
        name: found
        for name, found in names.items()
        if len(found) > 1 and name not in ("storey", "__main__") and sorted(found) != FACADE_OF.get(name)
    }
    assert not shared, shared


@pytest.mark.parametrize(
    "module, source, broken",
    [
        (
            "storey.kernels.sliding",
            "from ..core.batch import EventBatch",
            "a kernel imports storey.core.batch",
        ),
        (
            "storey.table.key_cache",
            "from ..engine.graph import Flow",
            "the state layer imports storey.engine",
        ),
        (
            "storey.drivers.noop_driver",
            "import storey.steps.functions",
            "the state layer imports storey.steps",
        ),
        (
            "storey.steps.join",
            "from ..sources.emit_sources import X",
            "the steps layer imports storey.sources",
        ),
        ("storey.aggregations.by_key", "from ..targets.file_targets import parquet_files", "the steps layer"),
        (
            "storey.core.batch",
            "from ..engine.runtime import FlowRuntime",
            "the core layer imports storey.engine",
        ),
        ("storey.core.batch", "from ..steps.functions import Map", "the core layer imports storey.steps"),
        ("storey.steps.join", "def f():\n    from ..table.key_cache import Table\n", "inside a function"),
    ],
)
def test_a_broken_rule_is_reported(module, source, broken):
    assert any(broken in found for found in violations(source, module)), violations(source, module)


@pytest.mark.parametrize(
    "module, source",
    [
        ("storey.aggregations.by_key", "def f():\n    from ..kernels import kernels\n"),
        ("storey.cli.backfill", "def f():\n    from storey.flow import build_flow\n"),
        ("storey.steps.join", "from ..table.key_cache import Table\nfrom ..core.batch import EventBatch"),
        ("storey.kernels.sliding", "from .buckets import scan"),
    ],
)
def test_allowed_imports_pass(module, source):
    assert violations(source, module) == []
