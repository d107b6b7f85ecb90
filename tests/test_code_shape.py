"""The code's shape limits (issue 17), checked on every run like the import-linter layers: no Python file over
600 lines, no function over 80, in product code, tests and benchmarks alike (migrations are generated)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SKIPPED_PARTS = {".venv", "var", "node_modules", "migrations", ".git", "media", "staticfiles"}
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 80


def python_files(root: Path = ROOT) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if not SKIPPED_PARTS.intersection(p.relative_to(root).parts))


def oversized(paths: list[Path]) -> tuple[list[str], list[str]]:
    """(files over the line limit, functions over the line limit), each as 'path[:line name] (n lines)'."""
    files, functions = [], []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        if lines > MAX_FILE_LINES:
            files.append(f"{path} ({lines} lines)")
        for node in ast.walk(ast.parse(text, filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    functions.append(f"{path}:{node.lineno} {node.name} ({length} lines)")
    return files, functions


def test_the_check_sees_an_oversized_file_and_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{k} = {k}" for k in range(MAX_FUNCTION_LINES))
    (tmp_path / "long.py").write_text(f"def too_long():\n{body}\n" + "\n" * MAX_FILE_LINES)
    (tmp_path / "short.py").write_text("def fine():\n    return 1\n")
    files, functions = oversized(python_files(tmp_path))
    assert files == [f"{tmp_path / 'long.py'} ({MAX_FUNCTION_LINES + 1 + MAX_FILE_LINES} lines)"]
    assert functions == [f"{tmp_path / 'long.py'}:1 too_long ({MAX_FUNCTION_LINES + 1} lines)"]


@pytest.mark.parametrize("kind", ["files", "functions"])
def test_no_python_file_or_function_is_over_the_limit(kind: str) -> None:
    paths = python_files()
    assert len(paths) > 100  # the walk found the project
    files, functions = oversized(paths)
    assert (files if kind == "files" else functions) == []
