"""OCR records: the page from the top, then its continuation, each cut at a line boundary.

A target that stops mid-line would teach the model to stop mid-line, so chunks hold whole lines
within ``max_chars``, and the instruction says which lines are wanted.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from finstage.config import require
from finstage.pagestore import Page
from finstage.records import Record, make_record
from finstage.synth.pagetext import PageText
from finstage.synth.tasks import page_meta, user_image

OCR_PROMPTS = (
    "このページに書かれている文字をすべて書き起こしてください。",
    "画像内のテキストを読み取り、そのまま出力してください。",
    "この資料のページをOCRして、本文を行ごとに書き出してください。",
)


@dataclass
class OcrConfig:
    max_chars: int  # target length; cut at a line boundary
    per_page: int  # records per page: the top of the page, then its continuation

    def check(self, where: str) -> None:
        require(self.max_chars >= 20, f"{where}.max_chars", f"must be >= 20, got {self.max_chars}")
        require(self.per_page >= 1, f"{where}.per_page", f"must be >= 1, got {self.per_page}")


def _ocr_chunk(lines: list[str], start: int, max_chars: int) -> tuple[str, int]:
    """Whole lines from `start` while they fit in max_chars; (text, end line exclusive)."""
    end = start
    while end < len(lines) and len("\n".join(lines[start : end + 1])) <= max_chars:
        end += 1
    return "\n".join(lines[start:end]), end


def build_ocr(page: Page, pt: PageText, cfg: OcrConfig, rng: random.Random) -> list[Record]:
    """The page from the top (first record), then its continuation in further records, each
    cut at a line boundary within max_chars; the instruction says which lines are wanted."""
    lines = list(pt.lines)
    while lines and not lines[-1].strip():
        lines.pop()
    first = 0
    while first < len(lines) and not lines[first].strip():
        first += 1
    records: list[Record] = []
    start = first
    while start < len(lines) and len(records) < cfg.per_page:
        target, end = _ocr_chunk(lines, start, cfg.max_chars)
        if end == start:  # a single line longer than max_chars: cut it
            target, end, mode = lines[start][: cfg.max_chars], start + 1, "chars"
        else:
            mode = "full" if start == first and end == len(lines) else "lines"
        if not target.strip():
            start = end
            continue
        if mode == "full":
            prompt = rng.choice(OCR_PROMPTS)
        elif mode == "chars":
            line_no = start - first + 1
            prompt = f"このページの{line_no}行目の冒頭{cfg.max_chars}文字を書き起こしてください。"
        elif start == first:
            prompt = f"このページの先頭から{end - first}行を書き起こしてください。"
        else:
            span = f"{start - first + 1}行目から{end - first}行目まで"
            prompt = f"このページの{span}を書き起こしてください。"
        meta = page_meta(page, "ocr") | {
            "first_line_idx": start,
            "end_line_idx": end,
            "truncated": mode,
            "page_chars": len("\n".join(lines[first:])),
        }
        records.append(
            make_record(
                id=f"ocr:{page['page_id']}:{len(records)}",
                source="ocr",
                images=[page["page_id"]],
                messages=[user_image(prompt), {"role": "assistant", "content": target}],
                answer=target,
                meta=meta,
            )
        )
        start = end
    return records
