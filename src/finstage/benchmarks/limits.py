"""Size limits for every raw benchmark file a reader opens.

A source is data from elsewhere (a download, a copy handed over, a hub snapshot), and a small
hostile file can declare far more than it holds: a 1 MiB zip that inflates to gigabytes, a
46 KiB workbook spanning 16,384 columns, one JSON line as long as the disk. Each reader checks
these limits before it builds anything, and fails with the file and the limit named.

The constants are fixed, not params: they are far above the real files (chABSA's release zip is
a few MB in ~2,300 documents; CPA_AUDIT.xlsx is 1,000 rows x 17 columns; EDINET-Bench rows carry
whole financial sheets, tens to hundreds of KB each; GSM8K is 1,319 lines) and far below what
would exhaust a machine, so no real file comes near them and no params file can loosen them.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

from finstage.benchmarks.transport import SourceError

MAX_FILE_BYTES = 512 << 20  # any one raw file read whole (a data.json, a chABSA document)
MAX_LINE_BYTES = 16 << 20  # one JSON Lines row
MAX_ROWS = 200_000  # rows of one table: JSONL, parquet, a worksheet, a hub split
MAX_COLUMNS = 256  # worksheet columns (CPA has 17)
MAX_MEMBERS = 20_000  # members of one zip archive (an .xlsx is one too)
MAX_MEMBER_BYTES = 64 << 20  # one zip member, uncompressed
MAX_SHEET_BYTES = 8 << 20  # one workbook part, uncompressed (CPA's sheet XML is well under 1 MB)
MAX_ARCHIVE_BYTES = 1 << 30  # all of one zip's members, uncompressed


def check_file(path: Path, limit: int | None = None) -> None:
    """Fail before reading `path` whole when it is larger than the limit."""
    limit = MAX_FILE_BYTES if limit is None else limit
    size = path.stat().st_size
    if size > limit:
        raise SourceError(f"{path}: {size} bytes, over the limit of {limit} bytes for one file")


def check_rows(where: object, rows: int) -> None:
    if rows > MAX_ROWS:
        raise SourceError(f"{where}: over the limit of {MAX_ROWS} rows")


def check_archive(archive: zipfile.ZipFile, where: object, member_limit: int | None = None) -> None:
    """Member count and declared uncompressed sizes, checked before any member is inflated.

    zipfile never inflates a member past its declared size (the stream stops there and the
    CRC check fails), so the declared sizes bound what reading can cost.
    """
    member_limit = MAX_MEMBER_BYTES if member_limit is None else member_limit
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise SourceError(
            f"{where}: {len(members)} members, over the limit of {MAX_MEMBERS} members"
        )
    for info in members:
        if info.file_size > member_limit:
            raise SourceError(
                f"{where}!{info.filename}: inflates to {info.file_size} bytes, over the limit "
                f"of {member_limit} bytes for one member"
            )
    total = sum(info.file_size for info in members)
    if total > MAX_ARCHIVE_BYTES:
        raise SourceError(
            f"{where}: inflates to {total} bytes, over the limit of {MAX_ARCHIVE_BYTES} bytes"
        )


def read_member(archive: zipfile.ZipFile, name: str, where: object) -> bytes:
    """One member's bytes, in memory (members are never extracted to disk), at most its cap."""
    with archive.open(name) as member:
        blob = member.read(MAX_MEMBER_BYTES + 1)
    if len(blob) > MAX_MEMBER_BYTES:
        raise SourceError(f"{where}!{name}: over the limit of {MAX_MEMBER_BYTES} bytes")
    return blob


def lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of a text file, one line at a time, none longer than the limit."""
    rows = 0
    with path.open("rb") as f:
        for n, line in enumerate(iter(lambda: f.readline(MAX_LINE_BYTES + 1), b""), 1):
            if len(line) > MAX_LINE_BYTES:
                raise SourceError(
                    f"{path}:{n}: a line over the limit of {MAX_LINE_BYTES} bytes; "
                    "expected one JSON object per line"
                )
            if line.strip():
                rows += 1
                check_rows(path, rows)
            yield n, line


def checked_zip(path: Path, member_limit: int | None = None) -> zipfile.ZipFile:
    """A zip archive opened for reading, its members' count and sizes checked."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise SourceError(f"{path}: not a readable zip archive ({err})") from err
    try:
        check_archive(archive, path, member_limit)
    except SourceError:
        archive.close()
        raise
    return archive
