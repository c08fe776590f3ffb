"""The `warmup` stage: tokenizer and a format-practised LLM for a P0 built from configs.

With `model.llm.pretrained` null the recipe would otherwise start from a random LLM, which no
stage of the recipe can teach to answer in a format (see pairs.py and loop.py for what was
measured). This stage trains the tokenizer on the corpus (as `base` used to), builds the LLM
from `model.llm.config`, practises it on the warm-up pairs and saves both as a plain causal-LM
folder that `base` then loads as if it were a pretrained model. With a pretrained LLM it only
records that it was skipped: an instruction model needs no practice.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path

from finstage.chat import ChatEncoder
from finstage.model.assemble import ModelConfig
from finstage.records import IMAGE_MARKER, Record, write_records
from finstage.warmup.config import WarmupConfig
from finstage.warmup.loop import LoopConfig, train
from finstage.warmup.pairs import warmup_pairs


def run_warmup(
    model_cfg: ModelConfig,
    cfg: WarmupConfig,
    templates: list[str],
    corpus: Iterable[str],
    short_qa: Iterable[Record],
    page_qa: Iterable[Record],
    out: Path,
    data_out: Path,
    curves: Path,
) -> dict:
    """Write the practised LLM + tokenizer to `out`, its pairs to `data_out`, its loss curve."""
    import torch

    from finstage.model.assemble import language_model, torch_dtype
    from finstage.model.tokenizer import train_tokenizer

    out.mkdir(parents=True, exist_ok=True)
    if model_cfg.llm.pretrained:
        card = {"stage": "warmup", "skipped": f"model.llm.pretrained is {model_cfg.llm.pretrained}"}
        (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
        data_out.mkdir(parents=True, exist_ok=True)
        write_curve([], curves)
        return card
    pairs = warmup_pairs(cfg.pairs, templates, short_qa, page_qa, cfg.seed)
    write_records(data_out, pairs)
    tokenizer = train_tokenizer(corpus, model_cfg.tokenizer.vocab_size)
    torch.manual_seed(model_cfg.seed)  # the random init, as base seeds its towers
    llm = language_model(model_cfg, tokenizer, torch_dtype(model_cfg.dtype))
    encoder = ChatEncoder(
        tokenizer, tokenizer.convert_tokens_to_ids(IMAGE_MARKER), 1, cfg.max_seq_len
    )
    encoded = [encoder.encode(p["messages"]) for p in pairs]
    examples = [e for e in encoded if e is not None]
    losses = train(llm, examples, loop_config(cfg), tokenizer.pad_token_id)
    llm.save_pretrained(out)
    tokenizer.save_pretrained(out)
    write_curve(losses, curves)
    card = {
        "stage": "warmup",
        "params": dataclasses.asdict(cfg),
        "pairs": {
            "written": len(pairs),
            "trained": len(examples),
            "too_long": len(pairs) - len(examples),
        },
        "loss": {"first": losses[0], "last": losses[-1]},
    }
    (out / "card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    return card


def write_curve(losses: list[float], curves: Path) -> None:
    """`step\\tloss` where the report and `dvc plots` read every stage's curve."""
    path = curves / "plots" / "metrics" / "loss.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("step\tloss\n" + "".join(f"{i}\t{v}\n" for i, v in enumerate(losses)))


def loop_config(cfg: WarmupConfig) -> LoopConfig:
    fields = {f.name for f in dataclasses.fields(LoopConfig)}
    return LoopConfig(**{k: v for k, v in dataclasses.asdict(cfg).items() if k in fields})
