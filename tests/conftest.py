"""Shared fixtures: a tiny P0 checkpoint, a few pages, and records, all built offline in seconds."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from PIL import Image, ImageDraw

from finstage.config import parse
from finstage.model.assemble import ModelConfig, build_p0
from finstage.model.tokenizer import train_tokenizer
from finstage.pagestore import page_id, write_pages
from finstage.records import make_record, write_records

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The README tour (`tests/test_tour.py`, 17 minutes) runs only when `-m` names it."""
    if "tour" in (config.option.markexpr or ""):
        return
    tour = [item for item in items if item.get_closest_marker("tour")]
    if tour:
        config.hook.pytest_deselected(items=tour)
        items[:] = [item for item in items if not item.get_closest_marker("tour")]


@contextmanager
def bench_script(filename: str) -> Iterator[ModuleType]:
    """A script under bench/ imported as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        f"bench_{Path(filename).stem}", ROOT / "bench" / filename
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


TEXTS = [
    "令和6年度 一般会計予算 （単位：百万円）",
    "歳出合計 1,234,567 1,200,000 △34,567",
    "前年度比3.2%増の1,234億円となりました。",
    "このページの文字を書き起こしてください。",
    "売上高は前年同期比で増加し、営業利益も改善しました。",
]


def repo_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def tiny_model_config() -> ModelConfig:
    """params.yaml's model section with smaller shapes, so unit tests build P0 in a second."""
    raw = repo_params()["model"]
    raw["vision"]["config"] = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": 32,
        "patch_size": 16,
    }
    raw["llm"]["config"] = {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 256,
    }
    raw["tokenizer"]["vocab_size"] = 400
    return parse(ModelConfig, raw, "model")


def warmup_folder(out: Path, cfg: ModelConfig, texts: list[str]) -> Path:
    """What the warmup stage saves (tokenizer + config-built LLM), without its practice: the
    folder `build_base` loads a config-built LLM from."""
    import torch

    from finstage.model.assemble import language_model

    tokenizer = train_tokenizer(texts, cfg.tokenizer.vocab_size)
    language_model(cfg, tokenizer, torch.float32).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_p0(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("p0")
    tokenizer = train_tokenizer(TEXTS * 20, 400)
    model = build_p0(tiny_model_config(), tokenizer)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def doc_sha(i: int) -> str:
    return hashlib.sha256(str(i).encode()).hexdigest()


def _png(seed: int) -> bytes:
    image = Image.new("RGB", (64, 80), "white")
    ImageDraw.Draw(image).rectangle([4 + seed, 4, 40, 20 + seed], outline="black")
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def tiny_pages(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pages")
    pages = [
        {
            "page_id": page_id(doc_sha(i), 0),
            "doc_sha256": doc_sha(i),
            "page_index": 0,
            "width": 64,
            "height": 80,
            "png": _png(i),
            "text": TEXTS[i % len(TEXTS)],
        }
        for i in range(4)
    ]
    write_pages(out, pages)
    return out


@pytest.fixture(scope="session")
def tiny_mixes(tmp_path_factory, tiny_pages) -> dict[str, Path]:
    """One visual and one text-only mixture, 8 records each."""
    root = tmp_path_factory.mktemp("mix")
    pids = [page_id(doc_sha(i), 0) for i in range(4)]
    visual = [
        make_record(
            f"v{i}",
            "synth/ocr",
            [
                {"role": "user", "content": "<image>このページの文字を書き起こしてください。"},
                {"role": "assistant", "content": TEXTS[i % len(TEXTS)]},
            ],
            images=[pids[i % 4]],
        )
        for i in range(8)
    ]
    text = [
        make_record(
            f"t{i}",
            "distill/math",
            [
                {"role": "user", "content": "前年度比は?"},
                {"role": "assistant", "content": TEXTS[(i + 2) % len(TEXTS)]},
            ],
        )
        for i in range(8)
    ]
    write_records(root / "visual", visual)
    write_records(root / "text", text)
    return {"visual": root / "visual", "text": root / "text"}
