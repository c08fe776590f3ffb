"""The one record schema shared by every task, stored as Parquet shards.

Every training and evaluation example, whatever produced it (OCR, VQA, finance QA, math
distillation), is a chat: a list of messages plus references to page images in the page
store. One schema lets mixtures combine any sources and lets the collator stay ignorant of
where an example came from. An image sits in a message wherever the literal ``<image>``
marker appears; the record's ``images`` list gives the page ids in the same order.

The marker is structural, so text a record quotes from an untrusted source (a page's text
layer, a teacher's output) must never carry it: the stage writing the record masks it
(`mask_markers`) and drops the records that would quote it, or keeps them for audit only. Other
strings that spell a chat template's tokens (``<|end|>``) may stay in the text: the encoder
(`finstage.chat`) never turns message text into special tokens.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypedDict

import pyarrow as pa
import pyarrow.parquet as pq

IMAGE_MARKER = "<image>"
# What `mask_markers` writes for a marker spelled by untrusted text: U+FDD0, a noncharacter
# Unicode reserves for internal use, so no document or model output holds it.
MARKER_STAND_IN = "\ufdd0"

MESSAGE_TYPE = pa.struct([("role", pa.string()), ("content", pa.string())])
RECORD_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("images", pa.list_(pa.string())),
        ("messages", pa.list_(MESSAGE_TYPE)),
        ("answer", pa.string()),
        ("meta", pa.string()),
    ]
)
ROLES = ("system", "user", "assistant")


class Message(TypedDict):
    role: str
    content: str


class Record(TypedDict):
    id: str
    source: str
    images: list[str]
    messages: list[Message]
    answer: str | None
    meta: dict[str, Any]


class RecordError(ValueError):
    """A record that breaks the schema; the message names the record and the field."""


def make_record(
    id: str,
    source: str,
    messages: list[Message],
    images: list[str] | None = None,
    answer: str | None = None,
    meta: dict[str, Any] | None = None,
) -> Record:
    record: Record = {
        "id": id,
        "source": source,
        "images": list(images or []),
        "messages": [Message(role=m["role"], content=m["content"]) for m in messages],
        "answer": answer,
        "meta": dict(meta or {}),
    }
    validate_record(record)
    return record


def validate_record(record: Record) -> None:
    """Reject a record the collator could not train on, before it reaches a shard."""
    rid = record.get("id") or "<no id>"
    if not record.get("messages"):
        raise RecordError(f"record {rid}: 'messages' is empty")
    for i, message in enumerate(record["messages"]):
        if message["role"] not in ROLES:
            raise RecordError(
                f"record {rid}: messages[{i}].role={message['role']!r}, not in {ROLES}"
            )
    if record["messages"][-1]["role"] != "assistant":
        raise RecordError(f"record {rid}: the last message must be the assistant's (the target)")
    markers = sum(m["content"].count(IMAGE_MARKER) for m in record["messages"])
    if markers != len(record["images"]):
        raise RecordError(
            f"record {rid}: {markers} {IMAGE_MARKER} markers but {len(record['images'])} images"
        )


def mask_markers(text: str) -> str:
    """`text` with every image marker replaced by MARKER_STAND_IN, so it adds no image to a
    record (and cannot fail `validate_record`); a record holding the stand-in quotes such text."""
    return text.replace(IMAGE_MARKER, MARKER_STAND_IN)


def quotes_masked_marker(record: Record) -> bool:
    """Whether the record quotes text in which `mask_markers` replaced an image marker."""
    texts = [m["content"] for m in record["messages"]] + [record["answer"] or ""]
    return any(MARKER_STAND_IN in t for t in texts)


def write_records(out_dir: Path, records: Iterable[Record], shard_size: int = 5000) -> int:
    """Write records as ``part-00000.parquet`` shards; returns how many were written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    count, shard, buffer = 0, 0, []
    for record in records:
        validate_record(record)
        buffer.append(record)
        count += 1
        if len(buffer) >= shard_size:
            _write_shard(out_dir / f"part-{shard:05d}.parquet", buffer)
            shard, buffer = shard + 1, []
    if buffer or shard == 0:
        _write_shard(out_dir / f"part-{shard:05d}.parquet", buffer)
    return count


def _write_shard(path: Path, records: list[Record]) -> None:
    rows = [
        {**r, "meta": json.dumps(r["meta"], ensure_ascii=False, sort_keys=True)} for r in records
    ]
    table = pa.Table.from_pylist(rows, schema=RECORD_SCHEMA)
    pq.write_table(table, path, compression="zstd")


def read_records(src: Path) -> Iterator[Record]:
    """Yield records from one shard or a directory of shards, in shard order."""
    src = Path(src)
    paths = sorted(src.glob("*.parquet")) if src.is_dir() else [src]
    if not paths:
        raise FileNotFoundError(f"no Parquet shards in {src}: run the stage that writes it first")
    for path in paths:
        for row in pq.read_table(path).to_pylist():
            row["meta"] = json.loads(row["meta"]) if row["meta"] else {}
            yield row  # type: ignore[misc]
