"""The benchmark record both stages write: rows in out/bench.json, tables in the README."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from studio import atomic


def merge_json(path: Path, rows: list[dict], stage: str) -> None:
    old = []
    if path.is_file():
        try:
            old = [r for r in json.loads(path.read_text()) if r.get("stage") != stage]
        except (ValueError, AttributeError):
            old = []
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, json.dumps(old + rows, indent=1) + "\n")


def update_readme(readme: Path, marker: str, text: str) -> None:
    start, end = f"<!-- bench:{marker}:start -->", f"<!-- bench:{marker}:end -->"
    s = readme.read_text()
    if start not in s or end not in s:
        print(f"{readme}: no {start} ... {end} markers; table not written there", file=sys.stderr)
        return
    head, rest = s.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}\n{text}\n{end}{tail}")


def publish(rows: list[dict], table: str, stage: str, json_path: str, readme: str | None) -> None:
    """Print a stage's table, merge its rows into the JSON record, and put the table in the README."""
    print(table)
    merge_json(Path(json_path), rows, stage)
    if readme:
        update_readme(Path(readme), stage, table)
