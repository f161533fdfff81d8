"""app/rating_stats stays pure: standard library, numpy and itself only (no database, no test-only references)."""

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "app" / "rating_stats"
ALLOWED = {"numpy", "app"}


def test_only_stdlib_numpy_and_itself() -> None:
    files = sorted(PACKAGE.glob("*.py"))
    assert len(files) >= 8
    bad = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module]
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
                else []
            )
            for name in names:
                top = name.split(".")[0]
                inside = name.startswith("app.rating_stats") or top != "app"
                if not inside or (top not in ALLOWED and top not in sys.stdlib_module_names):
                    bad.append(f"{path.name} imports {name}")
    assert bad == []
