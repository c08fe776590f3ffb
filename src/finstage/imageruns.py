"""Image markers → runs of image placeholder tokens, one run per view of each page.

A record's ``<image>`` marker stands for a page (`finstage.records`). The page may have several
views (its global render, then its tiles row-major; `finstage.pagestore`), and the stock
`LlavaForConditionalGeneration` scatters one image's features into each run of
``image_seq_length`` placeholders in order. So a marker whose page has ``n`` views becomes ``n``
runs back to back, and the pixel values (or cached features) list the same views in the same
order: the view ids this module returns are that order.
"""

from __future__ import annotations

from collections.abc import Callable

IGNORE = -100
ViewsOf = Callable[[str], list[str]]  # page id -> its view ids, global view first


def page_views(images: list[str], views: ViewsOf | None) -> list[list[str]]:
    """Each page's view ids; without a ``views`` lookup a page is its one global view."""
    return [views(pid) if views is not None else [pid] for pid in images]


def expand_runs(
    ids: list[int], labels: list[int], image_token_id: int, run_length: int, runs: list[int] | None
) -> tuple[list[int], list[int]]:
    """Replace the ``k``-th marker by ``runs[k]`` runs of ``run_length`` placeholders (one run
    each when ``runs`` is None), labelled IGNORE."""
    markers = ids.count(image_token_id)
    if runs is not None and len(runs) != markers:
        raise ValueError(
            f"{markers} image markers in the conversation but views for {len(runs)} pages; "
            "a record lists one page per <image> marker"
        )
    out_ids: list[int] = []
    out_labels: list[int] = []
    k = 0
    for tid, lab in zip(ids, labels, strict=True):
        if tid == image_token_id:
            count = run_length * (runs[k] if runs is not None else 1)
            out_ids.extend([tid] * count)
            out_labels.extend([IGNORE] * count)
            k += 1
        else:
            out_ids.append(tid)
            out_labels.append(lab)
    return out_ids, out_labels


def fit_runs(
    ids: list[int], labels: list[int], image_token_id: int, max_len: int
) -> tuple[list[int], list[int]] | None:
    """``ids`` cut to ``max_len`` tokens, or None when the cut would fall in or before an image
    run: fewer placeholders than vision features fails in the model ("Image features and image
    tokens do not match")."""
    if len(ids) <= max_len:
        return ids, labels
    if ids[max_len - 1] == image_token_id or image_token_id in ids[max_len:]:
        return None
    return ids[:max_len], labels[:max_len]
