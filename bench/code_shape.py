"""Modules over 300 lines and functions over 60 lines in src/ganforge (the shape of the code).

    python bench/code_shape.py [--modules 300] [--functions 60]
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "ganforge"


def long_functions(path: Path, limit: int):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = node.end_lineno - node.lineno + 1
            if n > limit:
                yield node.name, node.lineno, n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--modules", type=int, default=300)
    p.add_argument("--functions", type=int, default=60)
    args = p.parse_args()
    files = sorted(ROOT.rglob("*.py"))
    print(f"modules over {args.modules} lines:")
    for f in files:
        n = len(f.read_text().splitlines())
        if n > args.modules:
            print(f"  {f.relative_to(ROOT.parent)}: {n}")
    print(f"functions over {args.functions} lines:")
    for f in files:
        for name, line, n in long_functions(f, args.functions):
            print(f"  {f.relative_to(ROOT.parent)}:{line} {name}: {n}")


if __name__ == "__main__":
    main()
