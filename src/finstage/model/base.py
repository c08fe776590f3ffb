"""The `base` stage: tokenizer + P0 saved as the first checkpoint of the chain.

The saved tokenizer's chat template is the one every later stage, evaluation and stock user
renders with, so this is where its date is pinned (`model.chat_date`): a template that prints
today's date would otherwise give other prompts, and other hashes, every day.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

from finstage.model.assemble import ModelConfig, build_p0, load_tokenizer, parameter_counts
from finstage.model.export import save_processor, uniform_modes
from finstage.model.tokenizer import pin_chat_date, train_tokenizer
from finstage.model.versions import package_versions
from finstage.records import read_records


def corpus_texts(record_dirs: list[Path]) -> Iterator[str]:
    """Every message of the training records (held-out pages and benchmarks stay unseen)."""
    for root in record_dirs:
        for shard_dir in sorted({p.parent for p in Path(root).rglob("*.parquet")}):
            for record in read_records(shard_dir):
                for message in record["messages"]:
                    yield message["content"]


def build_base(cfg: ModelConfig, record_dirs: list[Path], warmup: Path, out_dir: Path) -> dict:
    """P0 from `cfg`; an LLM built from a config comes practised from `warmup` (the stage's
    folder: LLM and tokenizer), loaded as if it were a pretrained model."""
    built = cfg
    if not cfg.llm.pretrained:
        local = dataclasses.replace(cfg.llm, pretrained=str(warmup), revision=None)
        built = dataclasses.replace(cfg, llm=local)
        if not cfg.tokenizer.pretrained:
            built = dataclasses.replace(
                built, tokenizer=dataclasses.replace(cfg.tokenizer, pretrained=str(warmup))
            )
    if built.tokenizer.pretrained:
        tokenizer = load_tokenizer(built.tokenizer, cfg.trust_remote_code)
    else:  # a pretrained LLM with a tokenizer trained on the corpus (the warm-up was skipped)
        tokenizer = train_tokenizer(corpus_texts(record_dirs), cfg.tokenizer.vocab_size)
    model = build_p0(built, tokenizer)  # gives a pretrained tokenizer our template if it has none
    tokenizer.chat_template = pin_template_date(tokenizer.chat_template, cfg.chat_date)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    save_processor(model.config, tokenizer, out_dir)  # tokenizer + processor: stock tools load it
    card = {
        "stage": "base",
        "lineage": ["p0"],
        "params": dataclasses.asdict(cfg),
        "tokenizer": {
            "vocab_size": len(tokenizer),
            "trained_on_corpus": cfg.tokenizer.pretrained is None,
        },
        "llm_from": "warmup" if not cfg.llm.pretrained else cfg.llm.pretrained,
        "image_seq_length": model.config.image_seq_length,
        "parameters": parameter_counts(model),
        "versions": package_versions(),
    }
    (out_dir / "card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    uniform_modes(out_dir)
    return card


def pin_template_date(template: str | dict[str, str], chat_date: str) -> str | dict[str, str]:
    """`pin_chat_date` for a single template or each of a tokenizer's named templates."""
    if isinstance(template, dict):
        return {name: pin_chat_date(text, chat_date) for name, text in template.items()}
    return pin_chat_date(template, chat_date)
