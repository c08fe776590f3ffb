"""A local stand-in for a real instruct LLM (llm-jp-4-8b-instruct's shape, a thousandth its size).

Our embedded tokenizer (byte-level BPE, a prefix-stable template with generation markers) hides
every difference a real model brings, so this folder reproduces the ones that broke training:

* a SentencePiece-style unigram tokenizer with byte fallback whose normaliser prepends "▁" to
  every text section, so a "▁" appears after each special token (tokenising turns one by one
  then gives other ids than tokenising the conversation whole);
* an OpenAI-harmony chat template as llm-jp-4 ships it: no generation markers, earlier assistant
  turns closed by `<|end|>` and the last by `<|return|>` (so rendering more turns changes earlier
  text), history dropping the analysis channel, and today's date in the system message;
* a tiny Llama causal LM with that tokenizer's vocabulary, saved with `save_pretrained`, so
  `model.llm.pretrained` and `model.tokenizer.pretrained` can both point at the folder.

Built offline from text in this file in well under a second (`build_standin(folder)`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SPECIALS = [
    "<unk>",
    "<s>",
    "<|return|>",  # id 2, the eos as in llm-jp-4
    "<|pad_unused|>",
    "<|constrain|>",
    "<|startoftext|>",
    "<|endoftext|>",
    "<|reserved_7|>",
    "<|reserved_8|>",
    "<|reserved_9|>",
    "<|start|>",  # 10
    "<|end|>",  # 11
    "<|message|>",  # 12
    "<|call|>",  # 13
    "<|channel|>",  # 14
]
BYTES = [f"<0x{b:02X}>" for b in range(256)]
IDENTITY = "You are LLM-jp-4, a large language model trained by LLM-jp."

# Written as the real template behaves (harmony), not as our collator would like it: no
# `{% generation %}`, the final assistant turn closed differently from earlier ones, analysis
# kept only for the turn being trained, the current date from `strftime_now`.
HARMONY_TEMPLATE = (
    "{#- harmony-style chat template (stand-in for llm-jp-4-8b-instruct) -#}\n"
    "<|start|>system<|message|>" + IDENTITY + "\n"
    "Knowledge cutoff: 2025-12\n"
    "Current date: {{ strftime_now('%Y-%m-%d') }}\n\n"
    "# Valid channels: analysis, commentary, final. Channel must be included for every message."
    "<|end|>\n"
    "{%- set last_assistant = namespace(index=-1) -%}\n"
    "{%- for message in messages -%}\n"
    "  {%- if message['role'] == 'assistant' -%}{%- set last_assistant.index = loop.index0 -%}"
    "{%- endif -%}\n"
    "{%- endfor -%}\n"
    "{%- for message in messages -%}\n"
    "  {%- if message['role'] == 'system' or message['role'] == 'developer' -%}\n"
    "<|start|>developer<|message|># Instructions\n\n{{ message['content'] }}\n\n<|end|>\n"
    "  {%- elif message['role'] == 'user' -%}\n"
    "<|start|>user<|message|>{{ message['content'] }}<|end|>\n"
    "  {%- elif message['role'] == 'assistant' -%}\n"
    "    {%- if message.get('thinking') and loop.index0 == last_assistant.index -%}\n"
    "<|start|>assistant<|channel|>analysis<|message|>{{ message['thinking'] }}<|end|>\n"
    "    {%- endif -%}\n"
    "    {%- if loop.last and not add_generation_prompt -%}\n"
    "<|start|>assistant<|channel|>final<|message|>{{ message['content'] }}<|return|>\n"
    "    {%- else -%}\n"
    "<|start|>assistant<|channel|>final<|message|>{{ message['content'] }}<|end|>\n"
    "    {%- endif -%}\n"
    "  {%- endif -%}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}<|start|>assistant{%- endif -%}"
)

TRAINING_TEXT = [
    "令和6年度 一般会計予算 （単位：百万円）",
    "歳出合計 1,234,567 1,200,000 △34,567",
    "前年度比3.2%増の1,234億円となりました。",
    "このページの文字を書き起こしてください。",
    "売上高は前年同期比で増加し、営業利益も改善しました。",
    "この表の値を読み取ってください。根拠となる行を示してください。",
    "歳入 歳出 予算額 決算額 差引 増減 合計 単位 千円 百万円 億円",
    "問題 解答 答え 計算 割合 平均 利息 割引 売上 利益",
    "The quick brown fox jumps over the lazy dog.",
    "Revenue increased year over year and operating income improved.",
    "You are a large language model. Knowledge cutoff. Current date.",
    "Valid channels: analysis, commentary, final. Instructions",
    "0 1 2 3 4 5 6 7 8 9 10 100 1000 2025 2026",
]


def build_tokenizer(vocab_size: int = 600) -> PreTrainedTokenizerFast:
    """Unigram with byte fallback; "▁" is prepended by the normaliser, per text section."""
    seed = Tokenizer(models.Unigram())
    seed.normalizer = _normalizer()
    seed.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="never")
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=["<unk>"], unk_token="<unk>", show_progress=False
    )
    seed.train_from_iterator(TRAINING_TEXT * 5, trainer)
    learned = [
        (piece, score)
        for piece, score in json.loads(seed.to_str())["model"]["vocab"]
        if piece not in SPECIALS
    ]
    vocab = [(t, 0.0) for t in SPECIALS] + [(b, -100.0) for b in BYTES] + learned
    tok = Tokenizer(models.Unigram(vocab, unk_id=0, byte_fallback=True))
    tok.normalizer = _normalizer()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="never")
    tok.decoder = decoders.Sequence(  # as Llama-2's tokenizer.json: "▁" → " ", bytes → text
        [
            decoders.Replace("▁", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="<|return|>",
        unk_token="<unk>",
        additional_special_tokens=[t for t in SPECIALS if t not in ("<unk>", "<s>", "<|return|>")],
    )
    hf.chat_template = HARMONY_TEMPLATE
    return hf


def _normalizer() -> normalizers.Normalizer:
    return normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])


def build_standin(out: Path, vocab_size: int = 600) -> Path:
    """Write tokenizer + template + a tiny random Llama to `out`; returns `out`."""
    out.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(vocab_size)
    tok.save_pretrained(out)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tok.bos_token_id,
        eos_token_id=[tok.convert_tokens_to_ids(t) for t in ("<|return|>", "<|end|>", "<|call|>")],
        tie_word_embeddings=False,
    )
    LlamaForCausalLM(config).save_pretrained(out)
    return out
