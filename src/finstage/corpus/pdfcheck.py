"""What fetch does with one PDF's bytes: store it (as is, repaired or capped), or quarantine it.

Real-world PDFs are messy in ways that must not stop a run. A 794-byte file with a corrupt page
tree makes MuPDF raise on ``page_count``; a file with junk before ``%PDF-`` or after ``%%EOF``
opens fine; a 3,000-page budget book is exactly the document wanted. So every MuPDF call here is
guarded, and the answer is an `Inspection` whose ``status`` is one of

- ``stored``: usable as it is;
- ``stored-repaired``: MuPDF had to rebuild its cross-reference table (a truncated download, junk
  after ``%%EOF``, a broken xref); usable, but some pages may have lost their content, which the
  render stage's text-layer check then flags;
- ``stored-capped``: more than ``max_pages`` pages: stored whole, and only the first
  ``max_pages`` are rendered (``pages_kept``);
- ``quarantined``: unusable, with the reason (never quoting the bytes).

What the file *carries* that nobody should run or unpack — embedded files, JavaScript, form
fields, an owner password — is recorded as a flag and never executed or extracted (nothing here
or in render runs JavaScript or reads an attachment's bytes).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

import pymupdf

Status = Literal["stored", "stored-repaired", "stored-capped", "quarantined"]
T = TypeVar("T")
# objects scanned for JavaScript actions; past this a file is flagged as not fully scanned
MAX_SCANNED_OBJECTS = 200_000
# a JavaScript action's keys: /S /JavaScript, /JS, or the catalog's /JavaScript name tree
SCRIPT_KEYS = re.compile(r"/(JS|JavaScript)(?![A-Za-z0-9])")


class Limits(Protocol):
    """What the check needs from ``fetch:`` params (`FetchConfig` has these attributes)."""

    max_bytes: int
    max_pages: int
    allow_owner_password: bool


@dataclass
class Inspection:
    """The verdict on one content: what to do with it, and what was noticed on the way."""

    status: Status
    reason: str | None  # why it is quarantined, repaired or capped; None when stored as is
    pages: int | None = None  # pages in the file, when the page tree could be read
    pages_kept: int | None = None  # pages later stages may use
    flags: list[str] = field(default_factory=list)


class _Unusable(Exception):
    """Raised inside the check with the quarantine reason."""


def _guard(what: str, call: Callable[[], T]) -> T:
    """Run one MuPDF call; any failure becomes a quarantine reason naming what was attempted."""
    try:
        return call()
    except Exception as err:  # noqa: BLE001 - any MuPDF failure means this content is unusable
        raise _Unusable(f"unreadable: {what} failed ({type(err).__name__}: {err})") from None


def inspect_pdf(data: bytes, limits: Limits) -> Inspection:
    """The verdict on ``data``; never raises for anything the bytes contain."""
    if len(data) > limits.max_bytes:
        return too_large(len(data), limits.max_bytes)
    if not data:
        return Inspection("quarantined", "not a PDF: empty file")
    header = data.find(b"%PDF-")
    if header < 0:  # the reason never quotes the bytes: they may be anything
        return Inspection("quarantined", "not a PDF: no %PDF- header anywhere in the file")
    display = pymupdf.TOOLS.mupdf_display_errors()
    pymupdf.TOOLS.mupdf_display_errors(False)
    try:
        return _inspect_document(data, limits, header)
    except _Unusable as err:
        return Inspection("quarantined", str(err))
    finally:
        pymupdf.TOOLS.mupdf_warnings(reset=True)
        pymupdf.TOOLS.mupdf_display_errors(display)


def too_large(size: int, limit: int) -> Inspection:
    return Inspection(
        "quarantined", f"too large: {size} bytes exceeds fetch.max_bytes ({limit}); not kept"
    )


def _inspect_document(data: bytes, limits: Limits, header: int) -> Inspection:
    doc = _guard("open", lambda: pymupdf.open(stream=data, filetype="pdf"))
    with doc:
        if not _guard("format check", lambda: doc.is_pdf):
            # MuPDF sniffs content: an HTML error page saved as .pdf opens as an HTML document
            kind = _guard("metadata", lambda: (doc.metadata or {}).get("format")) or "unknown"
            return Inspection("quarantined", f"not a PDF: the content is {kind}")
        if _guard("password check", lambda: doc.needs_pass):
            return Inspection("quarantined", "encrypted: needs a password to open")
        flags = ["junk-before-header"] if header > 0 else []
        encryption = _guard("metadata", lambda: (doc.metadata or {}).get("encryption"))
        if encryption and not limits.allow_owner_password:
            return Inspection(
                "quarantined",
                f"encrypted: {encryption} with an owner password "
                f"(set fetch.allow_owner_password: true to accept such files)",
            )
        if encryption:
            flags.append("owner-password")
        pages = _guard("page count (the page tree)", lambda: doc.page_count)
        if pages < 1:
            return Inspection("quarantined", "empty: the PDF has no pages", pages=0)
        kept = min(pages, limits.max_pages)
        broken = [i for i in range(kept) if not _loads(doc, i)]
        if len(broken) == kept:
            return Inspection(
                "quarantined", f"unreadable: none of its {kept} page(s) loads", pages=pages
            )
        if broken:
            flags.append(f"unloadable-pages:{len(broken)}")
        flags += _carried(doc)
        repaired = bool(_guard("repair check", lambda: doc.is_repaired))
        if repaired:
            flags.append("repaired")
        if pages > kept:
            reason = f"capped: first {kept} of {pages} pages kept (fetch.max_pages)"
            return Inspection("stored-capped", reason, pages, kept, flags)
        if repaired:
            reason = "repaired: MuPDF rebuilt its cross-reference table; some content may be lost"
            return Inspection("stored-repaired", reason, pages, kept, flags)
        return Inspection("stored", None, pages, kept, flags)


def _loads(doc: pymupdf.Document, index: int) -> bool:
    try:
        doc.load_page(index)
    except Exception:  # noqa: BLE001 - a page that does not load is counted, not fatal
        return False
    return True


def _carried(doc: pymupdf.Document) -> list[str]:
    """Flags for embedded files, form fields and JavaScript: recorded, never run or unpacked."""
    flags = []
    attachments = _quiet(doc.embfile_count, 0)
    if attachments:
        flags.append(f"attachments:{attachments}")
    fields = _quiet(lambda: doc.is_form_pdf, False)
    if fields:
        flags.append(f"forms:{int(fields)}")
    scripts = _quiet(lambda: _has_javascript(doc), None)
    if scripts is None:
        flags.append("javascript-unknown")
    elif scripts:
        flags.append("javascript")
    return flags


def _quiet(call: Callable[[], T], fallback: T) -> T:
    """A flag's probe: a failure means the flag is unknown, not that the file is unusable."""
    try:
        return call()
    except Exception:  # noqa: BLE001
        return fallback


def _has_javascript(doc: pymupdf.Document) -> bool | None:
    """Whether any object's dictionary names a JavaScript action; None when the file has too
    many objects to scan."""
    count = doc.xref_length()
    if count > MAX_SCANNED_OBJECTS:
        return None
    for xref in range(1, count):
        try:
            text = doc.xref_object(xref, compressed=True)
        except Exception:  # noqa: BLE001 - a broken object carries no action MuPDF would see
            continue
        if SCRIPT_KEYS.search(text):
            return True
    return False
