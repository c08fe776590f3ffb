"""Pages: PDF pages rendered to images plus their reading-order text layer, kept in Parquet shards.

- `render`: PDF store (`finstage.pdfstore`) -> page shards (PNG + text, `finstage.pagestore`),
  with a small report of pages that failed.
"""
