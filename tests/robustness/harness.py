"""Running nb2pkg and notebook code in this process, for the robustness tests.

``run_cli`` calls ``nb2pkg.cli.main`` with captured output and turns an escaping exception into
the status "crash". ``run_cells`` executes cells in one namespace the way IPython would for plain
Python cells (the value of a cell's last bare expression is shown), without a kernel.
``load_package`` puts a generated package's modules into ``sys.modules`` so refactored cells can
import them.
"""

from __future__ import annotations

import ast
import contextlib
import io
import sys
import traceback
import types

from nb2pkg.cli import main


def run_cli(*args: str) -> tuple[int | str, str, str]:
    """``nb2pkg.cli.main`` in this process: (exit status or "crash", stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    # Libraries loaded by other tests raise the recursion limit; run with Python's default, as
    # the nb2pkg command does, so deep-nesting cases behave the same in any test order.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status: int | str = main(list(args))
        except KeyboardInterrupt:
            raise
        except BaseException:  # noqa: BLE001 - a crash is what we are looking for
            status = "crash"
            err.write(traceback.format_exc())
        finally:
            sys.setrecursionlimit(limit)
    return status, out.getvalue(), err.getvalue()


def run_cells(cells: list[str]) -> tuple[dict, str]:
    """Execute cells in one fresh namespace; return it (without dunders) and what was printed."""
    namespace: dict = {"__name__": "__main__"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for source in cells:
            tree = ast.parse(source)
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            exec(compile(tree, "<cell>", "exec"), namespace)
            if last is not None:  # IPython displays the value of a cell's last expression
                value = eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace)
                if value is not None:
                    print("Out:", repr(value))
    return {k: v for k, v in namespace.items() if not k.startswith("__")}, out.getvalue()


def load_package(plan, files: dict) -> list[str]:
    """Exec each generated module (as written: ``generate.render``) into a module object in
    ``sys.modules`` under the package path the notebooks import; return the names registered."""
    package_name = plan.name
    package = types.ModuleType(package_name)
    package.__path__ = []  # a package: submodules may be imported from it
    sys.modules[package_name] = package
    registered = [package_name]
    exec(compile(files[f"src/{package_name}/__init__.py"], package_name, "exec"), package.__dict__)
    for module in sorted(plan.modules, key=lambda m: m.name != "common"):
        full = f"{package_name}.{module.name}"
        mod = types.ModuleType(full)
        mod.__package__ = package_name
        sys.modules[full] = mod
        registered.append(full)
        setattr(package, module.name, mod)
        exec(compile(files[f"src/{package_name}/{module.name}.py"], full, "exec"), mod.__dict__)
    return registered


def unload(names: list[str]) -> None:
    for name in names:
        sys.modules.pop(name, None)
