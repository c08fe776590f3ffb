"""Per-stage mixtures: sizes, proportions, upsampling, dedup, determinism, params errors."""

from __future__ import annotations

import importlib.util
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from finstage.config import ParamsError, parse
from finstage.mix.build import MixConfig, allocate, build_mixture, mix_records, normalized_key
from finstage.records import make_record, read_records, write_records

ROOT = Path(__file__).resolve().parents[1]


def records(source: str, n: int, images: bool = False, start: int = 0) -> list:
    return [
        make_record(
            f"{source}:{i}",
            source,
            [
                {"role": "user", "content": ("<image>\n" if images else "") + f"{source} 質問 {i}"},
                {"role": "assistant", "content": f"答え {i}"},
            ],
            images=[f"page-{i}"] if images else [],
        )
        for i in range(start, start + n)
    ]


@pytest.fixture()
def roots(tmp_path):
    synth, distill = tmp_path / "synth", tmp_path / "distill"
    write_records(synth / "ocr", records("ocr", 100, images=True))
    write_records(synth / "vqa", records("vqa", 30, images=True))
    write_records(distill / "math_cot", records("math_cot", 50))
    return [synth, distill]


def cfg(sources: dict, total: int = 120, seed: int = 0) -> MixConfig:
    return parse(
        MixConfig, {"total": total, "seed": seed, "dedup": True, "sources": sources}, "mix.p1_s2"
    )


def test_allocate_sums_to_total_by_largest_remainder():
    assert allocate(10, {"a": 1, "b": 1, "c": 1}) == {"a": 4, "b": 3, "c": 3}
    assert allocate(7, {"a": 0.5, "b": 0.25, "c": 0.25}) == {
        "a": 3,
        "b": 2,
        "c": 2,
    }  # 3.5, 1.75, 1.75
    assert sum(allocate(101, {"x": 0.33, "y": 0.33, "z": 0.34}).values()) == 101
    assert allocate(5, {"a": 1, "b": 0}) == {"a": 5, "b": 0}


def test_sizes_proportions_and_upsampling_report(tmp_path, roots):
    summary = build_mixture(
        cfg({"ocr": 0.5, "vqa": 0.5}, total=120), roots, tmp_path / "out", "p1_s2"
    )
    mixed = list(read_records(tmp_path / "out"))
    assert len(mixed) == 120 == summary["total"]
    counts = Counter(r["source"] for r in mixed)
    assert counts == {"ocr": 60, "vqa": 60}
    assert len({r["id"] for r in mixed}) == 120  # repeated records get distinct ids
    assert summary["upsampled"] == ["vqa"] and not summary["sources"]["ocr"]["upsampled"]
    vqa_ids = Counter(r["meta"].get("mix_of", r["id"]) for r in mixed if r["source"] == "vqa")
    assert set(vqa_ids.values()) == {2}  # 30 records, each used exactly twice: no record favoured
    ocr_ids = [r["id"] for r in mixed if r["source"] == "ocr"]
    assert len(set(ocr_ids)) == 60  # without replacement when the source is large enough
    assert (
        json.loads((tmp_path / "out" / "stats.json").read_text())["sources"]["vqa"]["requested"]
        == 60
    )


def test_deterministic_and_shuffled(tmp_path, roots):
    c = cfg({"ocr": 2, "math_cot": 1}, total=90, seed=3)
    build_mixture(c, roots, tmp_path / "a")
    build_mixture(c, roots, tmp_path / "b")
    a, b = list(read_records(tmp_path / "a")), list(read_records(tmp_path / "b"))
    assert a == b
    assert Counter(r["source"] for r in a) == {"ocr": 60, "math_cot": 30}
    sources = [r["source"] for r in a]
    assert sources != sorted(sources)  # interleaved, not blocked by source
    build_mixture(cfg({"ocr": 2, "math_cot": 1}, total=90, seed=4), roots, tmp_path / "c")
    assert [r["id"] for r in read_records(tmp_path / "c")] != [r["id"] for r in a]


def test_exact_duplicates_removed_by_normalised_text():
    base = records("ocr", 10, images=True)
    dup = make_record(
        "ocr:dup",
        "ocr",
        [
            {"role": "user", "content": "<image>\nocr  質問 3"},
            {"role": "assistant", "content": "答え　3"},
        ],
        images=["page-3"],
    )
    other_page = make_record(
        "ocr:other",
        "ocr",
        [
            {"role": "user", "content": "<image>\nocr 質問 3"},
            {"role": "assistant", "content": "答え 3"},
        ],
        images=["page-99"],
    )
    assert normalized_key(dup) == normalized_key(base[3])
    assert normalized_key(other_page) != normalized_key(
        base[3]
    )  # same text on another page is not a duplicate
    mixed, stats = mix_records({"ocr": [*base, dup, other_page]}, cfg({"ocr": 1}, total=11))
    assert stats["ocr"].unique == 11 and stats["ocr"].available == 12
    assert len({normalized_key(r) for r in mixed}) == 11


def test_missing_or_empty_source_is_a_clear_error(tmp_path, roots):
    with pytest.raises(FileNotFoundError, match="captions"):
        build_mixture(cfg({"captions": 1}), roots, tmp_path / "out")
    write_records(roots[0] / "empty", [])
    with pytest.raises(ValueError, match="'empty' is empty"):
        build_mixture(cfg({"empty": 1, "ocr": 1}), roots, tmp_path / "out")


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"total": 0, "seed": 0, "dedup": True, "sources": {"ocr": 1}}, "mix.p1_s2.total"),
        ({"total": 10, "seed": 0, "dedup": True, "sources": {"ocr": -1}}, "mix.p1_s2.sources.ocr"),
        ({"total": 10, "seed": 0, "dedup": True, "sources": {}}, "mix.p1_s2.sources"),
        (
            {"total": 10, "seed": 0, "dedup": True, "sources": {"ocr": 1}, "size": 3},
            "mix.p1_s2.size",
        ),
        ({"seed": 0, "dedup": True, "sources": {"ocr": 1}}, "mix.p1_s2.total"),
    ],
)
def test_invalid_mix_params_name_the_key(params, key):
    with pytest.raises(ParamsError, match=re.escape(key)):
        parse(MixConfig, params, "mix.p1_s2")


def test_stage_load_config_reads_mix_of_the_named_stage():
    spec = importlib.util.spec_from_file_location("stage_mix", ROOT / "stages" / "mix.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    params = {
        "mix": {"p3_s1": {"total": 20, "seed": 1, "dedup": True, "sources": {"finqa_text": 1.0}}}
    }
    assert module.load_config(params, "p3_s1").sources == {"finqa_text": 1.0}
    with pytest.raises(KeyError):
        module.load_config(params, "p1_s1")
