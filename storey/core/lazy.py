"""Names a package gives from modules loaded on first use, so that importing the package stays
cheap: `import storey` loads neither Numba nor pandas until a flow needs them."""

import importlib


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
