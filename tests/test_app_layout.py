"""The app's layout holds: backends stay off Tk and the bus, the window never loads the CLI tools, and no code asks
an object whether it has a member (optional members get a default in the class that declares them)."""
from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def calls_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}


def test_backends_never_touch_tk_the_bus_or_the_controllers():
    for path in sorted((APP / "backends").glob("*.py")):
        wrong = {name for name in imports_of(path)
                 if name.startswith(("tkinter", "app.bus", "app.controllers", "app.views", "pubsub"))}
        assert not wrong, f"{path.name} imports {sorted(wrong)}"


def test_the_window_never_loads_the_command_line_tools():
    for path in sorted(APP.rglob("*.py")):
        if (APP / "cli") in path.parents:
            continue
        wrong = {name for name in imports_of(path) if name == "app.cli" or name.startswith("app.cli.")}
        assert not wrong, f"{path.relative_to(APP)} imports {sorted(wrong)}"


def test_no_code_probes_for_members_with_getattr_or_hasattr():
    probing = [str(path.relative_to(APP)) for path in sorted(APP.rglob("*.py"))
               if calls_of(path) & {"getattr", "hasattr"}]
    assert probing == []
