"""Near-duplicate pages across documents: the same page re-saved must reach training once.

Ministries publish the same page in several files (a summary re-issued inside the full report, a
corrected edition, a copy with an attachment, a rotated scan), and fetch only merges
byte-identical files. A page seen twice is weighted twice in training and may sit on both sides of
the held-out split. So render keeps the first copy in index order and records the others:

- pages with a usable text layer: MinHash over character 5-gram shingles of the NFKC text with
  whitespace removed (`datasketch`, whose LSH index keeps the lookup sublinear at 10^5 pages), a
  page being a duplicate when the estimated Jaccard similarity reaches
  ``render.near_duplicate_jaccard``;
- pages with no text, or garbage text (scans, image-only pages): a 256-bit difference hash of
  the image (16 x 16 neighbouring-pixel comparisons: a page is mostly white, so a coarser hash
  makes every sparse page look alike), in all four right-angle rotations, a page being a
  duplicate within ``render.near_duplicate_bits`` differing bits.

A page with only a few characters (a title page) still goes by its text: its few words tell it
apart from another title page far better than its mostly white image does.

Only pages of *other* documents count: a table continued over pages of one report repeats its
header, and both pages belong in the corpus. Ties go to the earliest page, so the result does not
depend on the order workers finish in.
"""

from __future__ import annotations

import io
import unicodedata

import numpy as np
from datasketch import MinHash, MinHashLSH
from PIL import Image

NUM_PERM = 128
SHINGLE = 5
HASH_SIDE = 16  # the difference hash compares 16 x 16 neighbouring pixels


def shingles(text: str) -> set[bytes]:
    flat = "".join(unicodedata.normalize("NFKC", text).split())
    return {flat[i : i + SHINGLE].encode("utf-8") for i in range(max(len(flat) - SHINGLE + 1, 1))}


def image_hashes(png: bytes) -> list[int]:
    """The difference hash of the image turned by 0, 90, 180 and 270 degrees."""
    gray = Image.open(io.BytesIO(png)).convert("L")
    hashes = []
    for turn in (None, Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180,
                 Image.Transpose.ROTATE_270):  # fmt: skip
        view = gray if turn is None else gray.transpose(turn)
        small = np.asarray(view.resize((HASH_SIDE + 1, HASH_SIDE), Image.BILINEAR), dtype=np.int16)
        bits = (small[:, 1:] > small[:, :-1]).flatten()
        hashes.append(int("".join("1" if b else "0" for b in bits), 2))
    return hashes


class NearDuplicates:
    """Pages seen so far; `check` says whether a new page repeats one of another document."""

    def __init__(self, jaccard: float, bits: int) -> None:
        self.jaccard = jaccard
        self.bits = bits
        self._lsh = MinHashLSH(threshold=jaccard, num_perm=NUM_PERM)
        self._minhashes: dict[str, tuple[MinHash, str, int]] = {}  # page -> (hash, doc, order)
        self._images: list[tuple[int, str, str]] = []  # (hash as rendered, doc, page)

    def check(self, page_id: str, doc: str, text: str | None, png: bytes) -> dict | None:
        """The page this one repeats and how closely (``{"duplicate_of", "similarity",
        "by"}``), or None after remembering it as a first copy. ``text`` is None when the page
        has no text or garbage text: the image decides then."""
        if text is not None:
            return self._check_text(page_id, doc, text)
        return self._check_image(page_id, doc, png)

    def _check_text(self, page_id: str, doc: str, text: str) -> dict | None:
        minhash = MinHash(num_perm=NUM_PERM)
        minhash.update_batch(list(shingles(text)))
        best = None
        for other in self._lsh.query(minhash):
            other_hash, other_doc, order = self._minhashes[other]
            similarity = minhash.jaccard(other_hash)
            if other_doc != doc and similarity >= self.jaccard:
                if best is None or order < best[0]:
                    best = (order, other, similarity)
        if best is not None:
            return {"duplicate_of": best[1], "similarity": round(best[2], 3), "by": "text"}
        self._lsh.insert(page_id, minhash)
        self._minhashes[page_id] = (minhash, doc, len(self._minhashes))
        return None

    def _check_image(self, page_id: str, doc: str, png: bytes) -> dict | None:
        turns = image_hashes(png)
        for seen, other_doc, other in self._images:
            distance = min(bin(seen ^ h).count("1") for h in turns)
            if other_doc != doc and distance <= self.bits:
                similarity = round(1 - distance / HASH_SIDE**2, 3)
                return {"duplicate_of": other, "similarity": similarity, "by": "image"}
        self._images.append((turns[0], doc, page_id))
        return None
