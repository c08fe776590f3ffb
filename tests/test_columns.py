"""Two-column reading order: columns read one after the other, tables and single lines untouched."""

from __future__ import annotations

from finstage.pages.render import group_lines


def word(x0: float, x1: float, y: float, text: str, height: float = 12.0) -> tuple:
    """A PyMuPDF word tuple ``(x0, y0, x1, y1, text, block, line, word)``."""
    return (x0, y - height / 2, x1, y + height / 2, text, 0, 0, 0)


def two_columns(left: list[str], right: list[str], top: float = 100.0) -> list[tuple]:
    words = [word(56, 56 + 11 * len(t), top + 17 * k, t) for k, t in enumerate(left)]
    words += [word(308, 308 + 11 * len(t), top + 17 * k, t) for k, t in enumerate(right)]
    return words


def test_columns_are_read_left_then_right():
    left = ["歳出総額は前年度比", "3.2%増の1,234億円と", "なりました。"]
    right = ["社会保障関係費は", "567億円です。"]
    assert group_lines(two_columns(left, right)) == left + right


def test_a_table_row_is_never_split():
    rows = [
        [word(56, 150, 100 + 17 * k, f"項目{k}"), word(300, 360, 100 + 17 * k, f"{k},234,567"),
         word(420, 480, 100 + 17 * k, f"{k},200,000")]
        for k in range(5)
    ]  # fmt: skip
    two_cells = [[word(56, 150, 200 + 17 * k, "合計"), word(320, 380, 200 + 17 * k, "9,999")]
                 for k in range(3)]  # fmt: skip
    lines = group_lines([w for row in rows + two_cells for w in row])
    assert lines[:5] == [f"項目{k} {k},234,567 {k},200,000" for k in range(5)]
    assert lines[5:] == ["合計 9,999"] * 3


def test_one_line_with_a_gap_is_not_a_region():
    """A heading with the date far to its right is one line, not two columns."""
    words = [word(56, 150, 80, "お知らせ"), word(420, 540, 80, "令和6年10月9日")]
    words += [word(56, 500, 100 + 17 * k, "本文" * 20) for k in range(3)]
    assert group_lines(words)[0] == "お知らせ 令和6年10月9日"


def test_text_after_the_region_stays_below_it():
    words = two_columns(["左の段落です。"] * 3, ["右の段落です。"] * 3)
    words.append(word(56, 400, 200, "公債発行額の推移"))  # a chart title under both columns
    lines = group_lines(words)
    assert lines == ["左の段落です。"] * 3 + ["右の段落です。"] * 3 + ["公債発行額の推移"]
