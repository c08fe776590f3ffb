"""Where PDFs come from: a generated corpus with known ground truth, a source manifest, and a
polite fetcher that stores every file content-addressed and quarantines the bad ones.

- `generate`: Japanese government-style budget, settlement and notice PDFs plus ``truth.jsonl``;
  `layouts`, `vocabulary` and `numerals` hold what the documents say, `pdfwriter`, `charts` and
  `scan` how pages (text, charts, two columns, image-only scans) are written.
- `manifest`: the ``data/sources.yaml`` format (local paths, directories, file:// and http(s)
  URLs, URL lists, crawl seeds).
- `fetch`: copy/download, validate with PyMuPDF, deduplicate by sha256 into the PDF store
  (`finstage.pdfstore`); `crawl` is the polite Scrapy crawler and downloader, `origin` the host
  allowlist and credential origins, `fetchconfig` their params.
"""
