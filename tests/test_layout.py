"""The emulators are a product beside the connector: ``connector/`` does not depend on them.

Only the command that serves them (``connector sandbox serve``, inside its function) and the demo
(``connector/sync/demo*.py``) import ``sandbox``; the connector's own modules import nothing from it, so a deployment could
ship without it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {"connector/cli.py", "connector/sync/demo.py", "connector/sync/demo_usage.py"}


def sandbox_imports(path: Path) -> list[tuple[int, str, bool]]:
    """Each import of ``sandbox`` in ``path``: line, module, and whether it is at module level."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            if name == "sandbox" or name.startswith("sandbox."):
                found.append((node.lineno, name, id(node) in top_level))
    return found


def imports_by_file() -> dict[str, list[tuple[int, str, bool]]]:
    return {
        str(path.relative_to(ROOT)): found
        for path in sorted((ROOT / "connector").rglob("*.py"))
        if (found := sandbox_imports(path))
    }


def test_only_the_serve_command_and_the_demo_import_the_emulators() -> None:
    found = imports_by_file()

    assert set(found) <= ALLOWED, {k: v for k, v in found.items() if k not in ALLOWED}
    assert found["connector/sync/demo.py"], "the demo runs against the sandbox"


def test_the_command_line_loads_the_emulators_only_inside_the_command_that_serves_them() -> None:
    found = sandbox_imports(ROOT / "connector" / "cli.py")

    assert found
    assert [name for _, name, top_level in found if top_level] == []


def test_the_scan_sees_an_import_of_the_emulators(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text(
        "import sandbox.xero\nfrom sandbox.salesforce.server import Sandbox\n"
        "def serve():\n    from sandbox import pytest_plugin\n",
        encoding="utf-8",
    )

    assert sandbox_imports(module) == [
        (1, "sandbox.xero", True),
        (2, "sandbox.salesforce.server", True),
        (4, "sandbox", False),
    ]
