"""The pipeline with a real instruct LLM's tokenizer and template: the local stand-in.

`model.llm.pretrained` and `model.tokenizer.pretrained` point at `tests/standin_llm.py`'s folder
(unigram + byte fallback with "▁" after special tokens, an undated harmony template), mixtures
are cut small, and `dvc repro evaluate@<last>` runs base, every training stage (the two-turn VQA
stage included, which a per-turn collator could not encode) and one evaluation. The checkpoint
must print the pinned date, and a record's training ids must be its evaluation ids.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from transformers import AutoTokenizer

from finstage.chat import ChatEncoder
from finstage.config import parse
from finstage.evaluate.lm import FinstageLM
from finstage.evaluate.run import EvalConfig
from finstage.recipe import training_stages
from finstage.records import read_records

from .conftest import ROOT, repo_params
from .shell import copy_checkout, sh
from .standin_llm import build_standin

pytestmark = pytest.mark.e2e
MIX_TOTAL = 12  # records per mixture: every stage trains, quickly
EVAL_LIMIT = 2  # items per benchmark
CHAT_DATE = "2026-02-03"


def standin_params(params: dict, standin: Path) -> dict:
    """params.yaml with the stand-in as LLM and tokenizer, small mixtures, a short evaluation."""
    model = params["model"]
    model["llm"] = {"pretrained": str(standin), "revision": None, "config": {}}
    model["tokenizer"]["pretrained"] = str(standin)
    model["chat_date"] = CHAT_DATE
    for mix in params["mix"].values():
        mix["total"] = MIX_TOTAL
    for plan in params["train"].values():
        plan["epochs"] = 1
        plan["max_seq_len"] = 1024  # byte fallback spends three tokens on most kanji
    # ... and so the `budgets` stage asks for about three times the embedded budgets
    params["evaluate"] |= {
        "limit": EVAL_LIMIT,
        "max_length": 1024,
        "gsm8k_max_gen_toks": 400,
        "visual_max_new_tokens": 384,
    }
    return params


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A copy of the project's files with stand-in params, after `dvc repro evaluate@<last>`."""
    root = tmp_path_factory.mktemp("standin-e2e")
    standin = build_standin(root / "standin")
    dest = root / "finstage"
    copy_checkout(ROOT, dest)
    params = standin_params(repo_params(), standin)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True, sort_keys=False))
    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=ci", "-c", "user.email=ci@localhost", "commit", "-qm", "copy"],
    ):
        sh(*cmd, cwd=dest)
    last = training_stages(params)[-1]
    (dest / "repro.log").write_text(sh("dvc", "repro", f"evaluate@{last}", cwd=dest))
    return dest


def test_every_training_stage_ran_on_the_standin(repo):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    log = (repo / "repro.log").read_text()
    for stage in ["base", "budgets", *(f"train@{s}" for s in training_stages(params))]:
        assert f"Running stage '{stage}'" in log, stage
    for stage in training_stages(params):
        card = yaml.safe_load((repo / "models" / stage / "card.json").read_text())
        assert card["data"]["examples"] > 0, stage
    assert (repo / "metrics" / "eval" / f"{training_stages(params)[-1]}.json").is_file()


def test_checkpoints_print_the_pinned_date(repo):
    tok = AutoTokenizer.from_pretrained(repo / "models" / "p0")
    text = tok.apply_chat_template(
        [{"role": "user", "content": "x"}], tokenize=False, add_generation_prompt=True
    )
    assert f"Current date: {CHAT_DATE}\n" in text and "<image>" in tok.get_vocab()


def test_a_two_turn_record_trains_on_its_evaluation_ids(repo):
    """The ids `train@p1_s2` trains on start with the ids the visual evaluation feeds."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    ckpt = repo / "models" / "p1_s2"
    cfg = parse(EvalConfig, params["evaluate"], "evaluate")  # as `evaluate` loads the model
    lm = FinstageLM.from_checkpoint(ckpt, 1, cfg.max_length, cfg.chat_template, "cpu")
    tok = AutoTokenizer.from_pretrained(ckpt)  # as `train` builds its encoder
    config = lm.model.config
    max_seq_len = params["train"]["p1_s2"]["max_seq_len"]
    train = ChatEncoder(tok, config.image_token_id, config.image_seq_length, max_seq_len)
    records = [r for r in read_records(repo / "data" / "mix" / "p1_s2") if len(r["messages"]) == 4]
    assert records, "p1_s2's mixture has two-turn VQA records"
    for record in records[:3]:
        for last in (1, 3):  # each answer's prompt: the first turn, then the whole history
            prompt = lm.encoder.encode_prompt(record["messages"][:last])
            encoded = train.encode(record["messages"][: last + 1], record["images"])
            assert encoded.input_ids[: len(prompt)] == prompt
            assert encoded.labels[len(prompt) - 1] == -100 != encoded.labels[len(prompt)]
