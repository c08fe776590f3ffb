"""A byte-level BPE tokenizer trained on the corpus, for the embedded scale.

Byte-level BPE can encode any Japanese text without unknown tokens, and training it on our own
corpus takes well under a second, so the default run needs no hub download. Real-scale runs
load the LLM's own tokenizer instead and only get the special tokens added.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from finstage.records import IMAGE_MARKER

ROLE_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>"]
END_OF_TURN = "<|end|>"
SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", IMAGE_MARKER, *ROLE_TOKENS, END_OF_TURN]

# Content is a plain string or the standard typed list (`[{"type": "image"}, {"type": "text",
# "text": ...}]`, what stock `processor.apply_chat_template` callers pass); either way an image
# is the single-token <image> marker, expanded to one placeholder per vision patch by the
# collator, and string content renders exactly as it always has (existing checkpoints' prompts
# keep their bytes). `{% generation %}` marks what the model is trained to write (the answer and
# its end-of-turn token), so the collator's labels come from the template itself. The same
# template renders training and evaluation prompts, so every checkpoint is scored with the format
# it was trained on.
CHAT_TEMPLATE = (
    "{%- macro render_content(content) -%}"
    "{%- if content is string -%}{{ content }}"
    "{%- else -%}{%- for part in content -%}"
    "{%- if part['type'] == 'image' -%}" + IMAGE_MARKER + ""
    "{%- elif part['type'] == 'text' -%}{{ part['text'] }}"
    "{%- else -%}{{ raise_exception('unsupported content part type: ' ~ part['type']) }}"
    "{%- endif -%}{%- endfor -%}{%- endif -%}"
    "{%- endmacro -%}"
    "{% for m in messages %}<|{{ m['role'] }}|>"
    "{% if m['role'] == 'assistant' %}"
    "{% generation %}{{ render_content(m['content']) }}<|end|>{% endgeneration %}"
    "{% else %}{{ render_content(m['content']) }}<|end|>{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token=END_OF_TURN, pad_token="<pad>"
    )
    hf.add_special_tokens({"additional_special_tokens": [IMAGE_MARKER, *ROLE_TOKENS]})
    hf.chat_template = CHAT_TEMPLATE
    return hf


def ensure_special_tokens(tok: PreTrainedTokenizerBase) -> int:
    """Give a pretrained tokenizer the image marker and a pad token; returns how many were added.

    The caller must resize the LLM's embeddings when this returns > 0.
    """
    added = 0
    if IMAGE_MARKER not in tok.get_vocab():
        added += tok.add_special_tokens({"additional_special_tokens": [IMAGE_MARKER]})
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if tok.chat_template is None:
        tok.chat_template = CHAT_TEMPLATE
        added += tok.add_special_tokens({"additional_special_tokens": [*ROLE_TOKENS, END_OF_TURN]})
    return added


# How this process happened to load the tokenizer (offline or not, from a folder or the hub),
# not what the tokenizer is; saved, they would make a checkpoint's bytes depend on whether
# HF_HUB_OFFLINE was set.
LOAD_SETTINGS = ("local_files_only", "is_local")


def save_tokenizer(tokenizer: PreTrainedTokenizerBase, out_dir: Path) -> None:
    """`save_pretrained`, minus the load-time settings transformers would record."""
    for key in LOAD_SETTINGS:
        tokenizer.init_kwargs.pop(key, None)
    tokenizer.save_pretrained(out_dir)
