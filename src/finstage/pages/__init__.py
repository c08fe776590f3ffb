"""Pages: PDF pages rendered to images plus their reading-order text layer, kept in Parquet shards.

- `render`: PDF store -> page shards (PNG + text), with a small report of pages that failed.
- `store`: the shard schema, `write_pages`, `PageStore` and stable `page_id`s.
"""
