"""Japanese text normalisation shared by stand-in generation, decontamination and scoring.

Full-width and half-width forms of the same character (``１２％`` and ``12%``) and re-wrapped
lines of the same passage must compare equal wherever the project asks "is this the same
text?": a leaked evaluation item, an OCR transcription, a rationale. NFKC folds the forms;
dropping all whitespace folds the wrapping, and costs nothing in Japanese, which has no word
spaces.
"""

from __future__ import annotations

import unicodedata


def nfkc(text: str) -> str:
    """Unicode NFKC: full-width digits, letters and punctuation become their ASCII forms."""
    return unicodedata.normalize("NFKC", text)


def compact(text: str) -> str:
    """NFKC with every whitespace character removed."""
    return "".join(nfkc(text).split())
