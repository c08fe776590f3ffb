"""Checkpoints run with stock tools alone: transformers, PEFT and lm-eval, never finstage.

Each check builds a checkpoint with our own code in this process, then runs the stock tool in a
subprocess that never imports finstage (asserted there) and compares what it computes with our
own prediction path. The README's snippets are what the subprocesses run, so the README cannot
drift from what works.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from lm_eval.api.instance import Instance
from PIL import Image, ImageDraw
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    LlavaForConditionalGeneration,
)

from finstage.chat import ChatEncoder, image_to_pixels
from finstage.config import parse
from finstage.evaluate.lm import FinstageLM
from finstage.model.base import build_base, corpus_texts
from finstage.model.export import export_text_backbone, save_processor, uniform_modes
from finstage.model.plan import StageConfig
from finstage.train.stage import run_stage

from .conftest import ROOT, repo_params, tiny_model_config, warmup_folder

PROMPT = "このページの文字を書き起こしてください。"
SNIPPET_CKPT = "models/p3_s2"
SNIPPET_REPO = 'repo = "/path/to/finstage"'
FORCED = 16  # tokens generated with end-of-turn suppressed
LOGIT_ATOL = 1e-5  # base + adapter applied on the fly vs merged into the weights (fp32)

# Runs after the snippet in the stock process: proves finstage stayed out, dumps what it made.
EPILOGUE = """
import json as _json, sys as _sys, torch as _torch
assert "finstage" not in _sys.modules, "the stock process imported finstage"
_torch.save(_dump, "dump.pt")
print(_json.dumps({"stock_ok": True}))
"""


def small(name: str) -> StageConfig:
    """The stage's plan from params.yaml, shortened to seconds on the tiny model."""
    raw = {**repo_params()["train"][name], "epochs": 2, "batch_size": 4, "max_seq_len": 96}
    return parse(StageConfig, raw, f"train.{name}")


def readme_snippet(name: str) -> str:
    """The python block between `<!-- stock:NAME -->` and `<!-- /stock:NAME -->` in README.md."""
    text = (ROOT / "README.md").read_text()
    found = re.search(
        rf"<!-- stock:{name} -->\s*```python\n(.*?)```\s*<!-- /stock:{name} -->", text, re.S
    )
    assert found, f"README.md has no stock:{name} snippet"
    return found.group(1)


def run_stock(code: str, cwd: Path) -> tuple[str, Any]:
    """Run `code` + EPILOGUE in a fresh interpreter in `cwd`; returns (stdout, its `_dump`)."""
    script = cwd / "stock_script.py"
    script.write_text(code + EPILOGUE)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_CACHE": str(cwd / "hf_datasets"),
    }
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [sys.executable, str(script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.rstrip().endswith('{"stock_ok": true}'), done.stdout[-2000:]
    stdout = done.stdout.rstrip()[: -len('{"stock_ok": true}')].removesuffix("\n")
    return stdout, torch.load(cwd / "dump.pt")


def page_image() -> Image.Image:
    """A page-like image, not square, so the resize to the tower's size really resamples."""
    image = Image.new("RGB", (96, 128), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([8, 8, 80, 30], outline="black", width=2)
    for row in range(40, 120, 9):
        draw.line([10, row, 20 + (row * 7) % 70, row], fill=(40, 40, 120), width=3)
    return image


@pytest.fixture(scope="module")
def stock_repo(tmp_path_factory, tiny_mixes, tiny_pages) -> Path:
    """A repository-shaped folder: models/p3_s1 (a P0 from the base stage's builder) and
    models/p3_s2 trained from it with p3_s2's plan, both given a processor and uniform modes
    (idempotent: once the stages call save_processor and uniform_modes, this rewrites the same
    bytes)."""
    repo = tmp_path_factory.mktemp("repo")
    base = Path("models/p3_s1")
    cwd = os.getcwd()
    os.chdir(repo)  # stage paths relative to the repository root, as dvc.yaml passes them
    try:
        cfg, records = tiny_model_config(), [tiny_mixes["visual"], tiny_mixes["text"]]
        warmup = warmup_folder(repo / "warmup", cfg, list(corpus_texts(records)))
        build_base(cfg, records, warmup, base)
        run_stage(
            "p3_s2", small("p3_s2"), base, tiny_mixes["visual"], tiny_pages, Path(SNIPPET_CKPT)
        )
    finally:
        os.chdir(cwd)
    for name in ("p3_s1", "p3_s2"):
        ckpt = repo / "models" / name
        save_processor(AutoConfig.from_pretrained(ckpt), AutoTokenizer.from_pretrained(ckpt), ckpt)
        uniform_modes(ckpt)
    return repo


def test_modes_are_uniform_in_checkpoint_and_adapter(stock_repo):
    ckpt = stock_repo / SNIPPET_CKPT
    paths = [ckpt, *ckpt.rglob("*")]
    assert any(p.name == "adapter_model.safetensors" for p in paths)
    modes = {p.relative_to(ckpt).as_posix(): oct(p.stat().st_mode & 0o777) for p in paths}
    want = {k: oct(0o755 if (ckpt / k).is_dir() else 0o644) for k in modes}
    assert modes == want


def test_adapter_records_a_machine_independent_base(stock_repo):
    config = json.loads((stock_repo / SNIPPET_CKPT / "adapter/adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "models/p3_s1"


def test_readme_generate_snippet_matches_our_prediction(stock_repo, tmp_path):
    ckpt = stock_repo / SNIPPET_CKPT
    page = page_image()
    page.save(tmp_path / "page.png")
    code = readme_snippet("generate")
    assert code.count(f'"{SNIPPET_CKPT}"') == 2
    code = code.replace(f'"{SNIPPET_CKPT}"', repr(str(ckpt)))
    # The snippet's greedy answer may be one end-of-turn token on a tiny model; logits at every
    # prompt position and FORCED tokens generated past end-of-turn compare far more than that.
    code += (
        "import torch\n"
        "with torch.no_grad():\n"
        "    logits = model(**inputs).logits\n"
        f"forced = model.generate(**inputs, max_new_tokens={FORCED}, min_new_tokens={FORCED},"
        " do_sample=False)[0, inputs['input_ids'].shape[1]:]\n"
        "_dump = {'input_ids': inputs['input_ids'], 'pixel_values': inputs['pixel_values'],"
        " 'new_ids': out[0, inputs['input_ids'].shape[1]:], 'logits': logits, 'forced': forced,"
        " 'forced_text': processor.decode(forced, skip_special_tokens=True)}\n"
    )
    printed, stock = run_stock(code, tmp_path)

    # ours: the visual evaluator's path (ChatEncoder prompt, image_to_pixels, FinstageLM greedy)
    model = LlavaForConditionalGeneration.from_pretrained(ckpt).eval()
    tok = AutoTokenizer.from_pretrained(ckpt)
    lm = FinstageLM(model, tok, 1, 512, chat_template=True, device=torch.device("cpu"))
    ids = lm.encoder.encode_prompt([{"role": "user", "content": f"<image>{PROMPT}"}])
    pixels = image_to_pixels(
        Image.open(tmp_path / "page.png"), model.config.vision_config.image_size
    )
    assert ids.count(model.config.image_token_id) == model.config.image_seq_length
    assert stock["input_ids"][0].tolist() == ids
    assert stock["pixel_values"].shape == (1, *pixels.shape)
    assert torch.allclose(stock["pixel_values"][0], pixels, atol=1e-6, rtol=0)
    ours = lm.generate_ids([ids], 64, pixel_values=pixels[None])[0]
    assert printed == ours
    prompt = torch.tensor([ids])
    with torch.no_grad():
        logits = model(input_ids=prompt, pixel_values=pixels[None]).logits
    assert torch.allclose(stock["logits"], logits, atol=1e-5, rtol=0)
    with torch.no_grad():  # the page reaches the logits: a blank page gives others
        blank = model(input_ids=prompt, pixel_values=torch.zeros_like(pixels[None])).logits
    assert not torch.allclose(blank, logits, atol=1e-3)
    greedy = model.generate(input_ids=prompt, pixel_values=pixels[None], max_new_tokens=64)
    assert stock["new_ids"].tolist() == greedy[0, len(ids) :].tolist()
    forced = model.generate(
        input_ids=prompt,
        pixel_values=pixels[None],
        max_new_tokens=FORCED,
        min_new_tokens=FORCED,
        do_sample=False,
    )[0, len(ids) :]
    assert stock["forced"].tolist() == forced.tolist()
    assert stock["forced_text"] == tok.decode(forced, skip_special_tokens=True)


def test_readme_adapter_snippet_loads_from_any_directory(stock_repo, tmp_path):
    code = readme_snippet("adapter")
    assert SNIPPET_REPO in code
    code = code.replace(SNIPPET_REPO, f"repo = {str(stock_repo)!r}")
    probe = "[[1, 3, 3, 3, 3, 40, 41, 42, 43]]"  # <s>, four image placeholders, text
    code += (
        "import torch\n"
        f"ids = torch.tensor({probe}); ids[ids == 3] = base.config.image_token_id\n"
        "pixels = torch.linspace(-1, 1, 3 * 32 * 32).reshape(1, 3, 32, 32)\n"
        "with torch.no_grad():\n"
        "    _dump = {'logits': model.eval()(input_ids=ids, pixel_values=pixels).logits}\n"
    )
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    _, stock = run_stock(code, outside)
    # AutoPeftModel reads the recorded base path, relative to the repository root: it loads
    # the same model from there (and only from there, as the README says)
    auto = "from peft import AutoPeftModel\n"
    auto += f"model = AutoPeftModel.from_pretrained({SNIPPET_CKPT + '/adapter'!r})\n"
    auto += "base = model.get_base_model()\n" + code[code.index("import torch\n") :]
    _, from_root = run_stock(auto, stock_repo)
    merged = LlavaForConditionalGeneration.from_pretrained(stock_repo / SNIPPET_CKPT).eval()
    base = LlavaForConditionalGeneration.from_pretrained(stock_repo / "models/p3_s1").eval()
    ids = torch.tensor(eval(probe))  # noqa: S307 - our own literal
    ids[ids == 3] = merged.config.image_token_id
    pixels = torch.linspace(-1, 1, 3 * 32 * 32).reshape(1, 3, 32, 32)
    with torch.no_grad():
        want = merged(input_ids=ids, pixel_values=pixels).logits
        untouched = base(input_ids=ids, pixel_values=pixels).logits
    assert torch.allclose(stock["logits"], want, atol=LOGIT_ATOL), (
        (stock["logits"] - want).abs().max()
    )
    assert not torch.allclose(stock["logits"], untouched, atol=LOGIT_ATOL)  # the adapter applied
    assert torch.allclose(from_root["logits"], want, atol=LOGIT_ATOL)


MC_CHOICES = ["増加", "減少"]
MC_ITEMS = [
    {"sentence": "売上高は前年同期比で増加しました。", "label": 0},
    {"sentence": "営業利益は計画を下回り減少しました。", "label": 1},
    {"sentence": "受注高は過去最高となりました。", "label": 0},
]

LMEVAL = """
import lm_eval
from lm_eval.tasks import TaskManager

task = {{
    "task": "stock_mc",
    "dataset_path": "json",
    "dataset_kwargs": {{"data_files": {{"test": {data!r}}}}},
    "test_split": "test",
    "output_type": "multiple_choice",
    "doc_to_text": "次の文の業績は増加か減少か。\\n文: {{{{sentence}}}}\\n答え:",
    "doc_to_choice": {choices!r},
    "doc_to_target": "{{{{label}}}}",
    "metric_list": [{{"metric": "acc", "aggregation": "mean", "higher_is_better": True}}],
    "metadata": {{"version": 1.0}},
}}
out = lm_eval.simple_evaluate(
    model="hf",
    model_args={{"pretrained": {model!r}, "dtype": "float32", "device": "cpu"}},
    tasks=[task],
    task_manager=TaskManager(include_defaults=False),
    num_fewshot=0,
    batch_size=2,
    log_samples=True,
    apply_chat_template=False,
    bootstrap_iters=0,
)
_dump = [
    {{"doc_id": s["doc_id"], "arguments": [list(a) for a in s["arguments"]],
      "loglikelihoods": [float(r[0][0]) for r in s["resps"]]}}
    for s in out["samples"]["stock_mc"]
]
"""


def direct_loglikelihood(model, tok, context: str, continuation: str) -> float:
    """log P(continuation | context) on raw text computed by hand, independent of both adapters:
    trailing context spaces move to the continuation, and the continuation is what encoding the
    whole adds to the context (the split lm-eval's causal models make)."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = tok(context + continuation)["input_ids"]
    ctx = tok(context)["input_ids"]
    cont = whole[len(ctx) :]
    ids = torch.tensor([ctx + cont])
    with torch.no_grad():
        logprobs = F.log_softmax(model(input_ids=ids).logits[0, :-1].float(), dim=-1)
    targets = ids[0, 1:][-len(cont) :]
    return float(logprobs[-len(cont) :].gather(-1, targets[:, None]).sum())


def test_lm_eval_hf_scores_the_exported_backbone_as_we_score_the_checkpoint(stock_repo, tmp_path):
    ckpt = stock_repo / SNIPPET_CKPT
    text_dir = export_text_backbone(ckpt, tmp_path / "text")
    data = tmp_path / "items.jsonl"
    data.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in MC_ITEMS))
    code = LMEVAL.format(data=str(data), choices=MC_CHOICES, model=str(text_dir))
    _, samples = run_stock(code, tmp_path)

    model = LlavaForConditionalGeneration.from_pretrained(ckpt).eval()
    tok = AutoTokenizer.from_pretrained(ckpt)
    lm = FinstageLM(model, tok, 2, 256, chat_template=False, device=torch.device("cpu"))
    assert sorted(s["doc_id"] for s in samples) == list(range(len(MC_ITEMS)))
    for sample in samples:
        item = MC_ITEMS[sample["doc_id"]]
        pairs = [tuple(a) for a in sample["arguments"]]
        # the raw prompt, no chat template, and lm-eval's default " " target delimiter
        prompt = f"次の文の業績は増加か減少か。\n文: {item['sentence']}\n答え:"
        assert pairs == [(prompt, f" {c}") for c in MC_CHOICES]
        requests = [
            Instance("loglikelihood", item, pair, i, ("stock_mc", sample["doc_id"], 1))
            for i, pair in enumerate(pairs)
        ]
        ours = [ll for ll, _ in lm.loglikelihood(requests, disable_tqdm=True)]
        assert sample["loglikelihoods"] == pytest.approx(ours, abs=1e-4)
        by_hand = [direct_loglikelihood(model, tok, *pair) for pair in pairs]
        assert ours == pytest.approx(by_hand, abs=1e-4)
        assert len(set(ours)) == len(ours)  # the choices really score differently


def test_processor_rejects_a_placeholder_count_the_model_does_not_expect(stock_repo, tmp_path):
    ckpt = stock_repo / SNIPPET_CKPT
    config = AutoConfig.from_pretrained(ckpt)
    config.image_seq_length += 1
    with pytest.raises(ValueError, match="image_seq_length"):
        save_processor(config, AutoTokenizer.from_pretrained(ckpt), tmp_path)


def test_encoder_and_processor_agree_on_text_only_prompts(stock_repo):
    """The processor's tokenizer is the checkpoint's: a text-only prompt is the same ids."""
    from transformers import AutoProcessor

    ckpt = stock_repo / SNIPPET_CKPT
    processor = AutoProcessor.from_pretrained(ckpt, backend="pil")
    config = AutoConfig.from_pretrained(ckpt)
    encoder = ChatEncoder(processor.tokenizer, config.image_token_id, config.image_seq_length, 512)
    messages = [{"role": "user", "content": PROMPT}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert processor(text=text)["input_ids"][0] == encoder.encode_prompt(messages)


def test_export_text_command_writes_a_folder_stock_transformers_loads(tiny_p0, tmp_path):
    from typer.testing import CliRunner

    from finstage.cli import app

    runner = CliRunner()
    missing = runner.invoke(app, ["export-text", str(tmp_path / "nothing"), str(tmp_path / "o")])
    assert missing.exit_code == 2 and "not a checkpoint folder" in missing.output
    out = tmp_path / "text"
    result = runner.invoke(app, ["export-text", str(tiny_p0), str(out)])
    assert result.exit_code == 0, result.output
    llava = LlavaForConditionalGeneration.from_pretrained(tiny_p0)
    text = AutoModelForCausalLM.from_pretrained(out)
    ids = torch.tensor([[5, 17, 42, 99]])
    torch.testing.assert_close(text(input_ids=ids).logits, llava(input_ids=ids).logits)
