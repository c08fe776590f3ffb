"""Whether a page's text layer can stand for what the page shows.

The text layer is the OCR target and the passage a grounded teacher quotes. On real files it is
often not the page: a scanned page has none, a repaired file may have lost a page's content
stream, and a CJK file with a broken ToUnicode map yields U+FFFD, private-use code points or
Latin-1 mojibake in place of kanji. Training a model to "read" such text teaches it to emit
garbage, so render flags the page (``text_issue``) and the synthesis stage never uses a flagged
page's text layer as a target.

The check is deliberately about *code points*, not language: a page is unusable when it has almost
no text, or when too large a share of its characters are ones no correct extraction of a
Japanese or English financial document produces.
"""

from __future__ import annotations

import unicodedata

MIN_CHARS = 8  # fewer visible characters than this: an empty or image-only page
MAX_BAD_SHARE = 0.05  # more than this share of suspicious characters: garbage
# Latin-1 Supplement characters a Japanese or English financial page does print
_LATIN1_KEPT = set("×÷°±§¥©®µ·¶«»¢£¬¹²³¼½¾")


def _suspicious(char: str) -> bool:
    """A code point a correct extraction does not yield: the replacement character, private use,
    unassigned, surrogates, control characters, or Latin-1 mojibake (``Ã¥``: UTF-8 read as
    Latin-1 — the usual signature of a wrong encoding)."""
    if char == "\ufffd":
        return True
    category = unicodedata.category(char)
    if category in ("Co", "Cn", "Cs") or (category == "Cc" and char not in "\n\t"):
        return True
    return "\u0080" <= char <= "\u00ff" and char not in _LATIN1_KEPT


def text_issue(text: str) -> str | None:
    """Why ``text`` cannot serve as the page's text, or None when it can."""
    visible = [c for c in text if not c.isspace()]
    if len(visible) < MIN_CHARS:
        return f"empty: {len(visible)} visible character(s) in the text layer"
    bad = sum(_suspicious(c) for c in visible)
    share = bad / len(visible)
    if share > MAX_BAD_SHARE:
        return (
            f"garbage: {share:.0%} of the text layer's characters are replacement, private-use, "
            f"control or mojibake code points"
        )
    return None
