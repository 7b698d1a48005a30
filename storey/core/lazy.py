"""Names a package gives from modules loaded on first use, so that importing the package stays
cheap: `import storey` loads neither Numba nor pandas until a flow needs them."""

import importlib
import sys


def lazy_exports(package, module_of):
    """The module `__getattr__` of `package` that loads `name` from the module `module_of[name]`
    (an absolute module name) the first time it is asked for, and keeps it."""
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name):
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__


def lazy_package(package, exports, others=None, base=None):
    """(`__getattr__`, `__all__`) of a package that gives names from modules loaded on first use:
    `exports` maps each module (relative to `base`, by default the package) to the names it gives;
    `others` likewise, for names given but left out of `__all__` (base classes storey 1.0.6's users
    subclass)."""
    base = base or package
    module_of = {name: f"{base}.{module}" for module, names in exports.items() for name in names}
    public = sorted(module_of)
    for module, names in (others or {}).items():
        module_of.update({name: f"{base}.{module}" for name in names})
    return lazy_exports(package, module_of), public


class LazyModule:
    """A third-party module imported when one of its names is first used (pandas: a flow that
    builds no DataFrame never imports it)."""

    def __init__(self, name):
        self._name = name

    def __getattr__(self, attribute):
        module = importlib.import_module(self._name)
        # later lookups find the module's names on this object directly
        self.__dict__.update(vars(module))
        return getattr(module, attribute)


def loaded(name):
    """The module `name` if it was imported, else None: a value of its types can only exist then."""
    return sys.modules.get(name)
