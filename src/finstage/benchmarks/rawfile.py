"""Reading raw benchmark files whose formats several benchmarks share, with errors that name
the file, the row and the field: a wrong file pointed at by params must fail before any model
loads, saying what to fix. Every read stays within `limits`: files are sized before they are
read whole, JSON Lines are read a line at a time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from finstage.benchmarks import limits
from finstage.benchmarks.transport import Row, SourceError


def field(row: dict[str, Any], where: str, key: str, kind: type | tuple[type, ...]) -> Any:
    """``row[key]``, which the raw schema requires to be of type `kind` (bool never counts)."""
    if not isinstance(row, dict) or key not in row:
        raise SourceError(f"{where}: missing field '{key}'; the raw schema requires it")
    value = row[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise SourceError(f"{where}: field '{key}' has the wrong type: {value!r}")
    return value


def read_json(path: Path) -> Any:
    limits.check_file(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SourceError(f"{path}: not valid UTF-8 JSON ({err})") from err


def table_files(stem: str) -> list[str]:
    """A table's file names inside a folder: JSON Lines first, then parquet."""
    return [f"{stem}.jsonl", f"{stem}.json", f"{stem}.parquet"]


def table_rows(path: Path) -> list[Row]:
    """JSON Lines (GSM8K, EDINET-Bench's to_json exports) or parquet (hub snapshots)."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        limits.check_file(path)
        limits.check_rows(path, pq.ParquetFile(path).metadata.num_rows)
        return [(f"{path} row {i}", r) for i, r in enumerate(pq.read_table(path).to_pylist())]
    rows: list[Row] = []
    for n, line in limits.lines(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise SourceError(f"{path}:{n}: not a JSON line ({err}); expected JSONL") from err
        if not isinstance(row, dict):
            raise SourceError(f"{path}:{n}: expected a JSON object per line")
        rows.append((f"{path}:{n}", row))
    return rows


def unique_ids(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Docs whose ids are unique strings: a repeat of an id already used gets ``#2``, ``#3``...

    Overlap checks and predictions tell items apart by id, and a source that repeats one must
    not stop evaluation; the first occurrence keeps its id, so ids stay stable.
    """
    used: set[str] = set()
    out = []
    for doc in docs:
        base = new = str(doc["id"])
        k = 1
        while new in used:
            k += 1
            new = f"{base}#{k}"
        used.add(new)
        out.append(doc if new == doc["id"] else {**doc, "id": new})
    return out
