"""Broken and hostile PDFs, generated the way real crawls meet them.

Each builder starts from a real PDF (PyMuPDF writes it, so the objects are laid out as in files
found on government sites) and breaks it as the public renderer test suites do: a page tree whose
``/Count`` lies, a cross-reference table overwritten with junk, a download cut short, bytes
before the header, an HTML error page saved as ``.pdf``, passwords, attachments, JavaScript.
"""

from __future__ import annotations

import io
import random

import pymupdf
from PIL import Image, ImageDraw

TEXT = "令和6年度 一般会計予算 歳出合計 1,234,567 百万円 前年度比 3.2% 増"


ITEMS = ("社会保障関係費", "地方交付税交付金", "公共事業関係費", "文教及び科学振興費", "防衛関係費")


def document(pages: int = 2, text: str = TEXT, seed: int = 0) -> pymupdf.Document:
    """A born-digital document with a CJK text layer on every page; each seed's figures differ,
    so two seeds' pages are different pages, not near-duplicates."""
    rng = random.Random(seed)
    doc = pymupdf.open()
    for i in range(pages):
        page = doc.new_page()
        page.insert_text((56, 80), f"{text} 第{i + 1}頁", fontname="japan", fontsize=11)
        for row, item in enumerate(ITEMS):
            figures = " ".join(f"{rng.randrange(10**6):,}" for _ in range(4))
            page.insert_text((56, 110 + 18 * row), f"{item} {figures}", fontname="japan")
    return doc


def pdf(pages: int = 2, text: str = TEXT, seed: int = 0) -> bytes:
    with document(pages, text, seed) as doc:
        return doc.tobytes()


def corrupt_page_tree(data: bytes) -> bytes:
    """MuPDF opens it, then raises ``Invalid number of pages`` when the page count is read."""
    head = data.index(b"/Count ") if b"/Count " in data else data.index(b"/Count")
    end = head + len(b"/Count")
    while data[end : end + 1] in (b" ", b"\n"):
        end += 1
    digits = end
    while data[digits : digits + 1].isdigit():
        digits += 1
    return data[:head] + b"/Count 999999999" + data[digits:]


def corrupt_xref(data: bytes) -> bytes:
    at = data.rindex(b"xref")
    return data[:at] + b"xref\n0 9\nzzzzzzzzzz garbage" + data[at + 40 :]


def truncated(data: bytes) -> bytes:
    return data[: int(len(data) * 0.6)]


def junk_before_header(data: bytes) -> bytes:
    return b"Content-Type: application/pdf\r\n\r\n" + b"\x00junk" * 40 + data


def html_as_pdf() -> bytes:
    return b"<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>\n"


def encrypted(user_pw: str = "") -> bytes:
    """AES-256; with an empty user password it opens, but carries an owner password."""
    with document(1) as doc:
        return doc.tobytes(
            encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="owner", user_pw=user_pw
        )


def with_attachment_and_javascript(data: bytes) -> bytes:
    with pymupdf.open(stream=data) as doc:
        doc.embfile_add("payload.exe", b"MZ\x90\x00 not run", filename="payload.exe")
        doc.xref_set_key(doc.pdf_catalog(), "OpenAction", "<</S/JavaScript/JS(app.alert\\(1\\))>>")
        return doc.tobytes()


def rotated(data: bytes) -> bytes:
    """The same pages re-saved turned by 90 degrees: other bytes, same text."""
    with pymupdf.open(stream=data) as doc:
        for page in doc:
            page.set_rotation(90)
        return doc.tobytes(garbage=1)


def image_only(seed: int = 0) -> bytes:
    """A scan: one page holding a noisy picture of text, no text layer."""
    rng = random.Random(seed)
    image = Image.new("L", (600, 800), 255)
    draw = ImageDraw.Draw(image)
    for row in range(20):
        draw.rectangle((40, 40 + row * 36, 40 + rng.randint(200, 520), 56 + row * 36), fill=30)
    for _ in range(3000):
        image.putpixel((rng.randrange(600), rng.randrange(800)), rng.randrange(256))
    buffer = io.BytesIO()
    image.rotate(1.2, fillcolor=255).save(buffer, format="JPEG", quality=60)
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_image(page.rect, stream=buffer.getvalue())
    return doc.tobytes()


def garbage_text() -> bytes:
    """A CJK page drawn with a Latin font's encoding: Shift-JIS bytes that extract as Latin-1
    mojibake (``—ß˜a``), the signature of a file whose font carries no usable ToUnicode map."""
    doc = pymupdf.open()
    page = doc.new_page()
    mojibake = (TEXT * 2).encode("shift_jis").decode("latin-1")
    for row in range(4):
        page.insert_text((40, 80 + 20 * row), mojibake[row * 40 : row * 40 + 40], fontname="helv")
    return doc.tobytes()
