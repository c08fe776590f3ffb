"""A byte-level BPE tokenizer trained on the corpus, for the embedded scale.

Byte-level BPE can encode any Japanese text without unknown tokens, and training it on our own
corpus takes well under a second, so the default run needs no hub download. Real-scale runs
load the LLM's own tokenizer instead and only get the special tokens added.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # loaded where a tokenizer is built, so params validation stays light
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
    "{%- if part['type'] == 'image' -%}" + IMAGE_MARKER + "{%- elif part['type'] == 'text' -%}"
    "{{ part['text'] }}"
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


# The trace tags of `finstage.traces`, one plain (not special) token each, as reasoning models
# carry `<think>`. Split into `<`, `Thinking`, `>`, every tag ends in the `>` that also ends
# `</Answer>`, the last token before the end of turn; the 2-layer embedded model then learned
# "`>` ends the answer" and stopped right after `<Problem>` or `<Thinking>` on most GSM8K items
# (P0 parse coverage 0.25; 1.00 with the tags whole, same data and seed).
TRACE_TAGS = ("<Problem>", "</Problem>", "<Thinking>", "</Thinking>", "<Answer>", "</Answer>")


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFKC()
    # One token per digit, as Llama's and Qwen's tokenizers split numbers: merged digit runs
    # ("1,286,243" -> 1 , 28 6 , 2 43) give a number a different spelling in every context.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
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
    hf.add_tokens(list(TRACE_TAGS))
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


# --- the date a chat template prints as "today" -------------------------------------------
# Templates like OpenAI harmony (llm-jp-4) print `strftime_now("%Y-%m-%d")` in the system
# message, so a prompt (and every hash after it) would change daily. `pin_chat_date` defines a
# Jinja macro of that name at the top of the template; a template-level name shadows the
# renderer's global, so every later stage, evaluation and stock user prints the pinned date.
# Names are English (C locale) whatever the machine's locale.
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August"]
MONTHS += ["September", "October", "November", "December"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
PIN_BEGIN = "{#- finstage: chat date pinned -#}"
# Ends in an expression, not a tag: trim_blocks would eat a newline the template starts with.
PIN_END = "{#- finstage: end of pinned chat date #}{{ '' }}"
STRFTIME_CALL = re.compile(r"""strftime_now\(\s*(['"])(.*?)\1\s*\)""")
DIRECTIVE = re.compile(r"%(-?)(.)")


def is_iso_date(text: str) -> bool:
    """True for a real calendar date written YYYY-MM-DD."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def format_date(fmt: str, day: date) -> str:
    """`day.strftime(fmt)` at midnight in the C locale, `%-d`/`%-m` included on any platform."""

    def field(match: re.Match[str]) -> str:
        unpadded, code = match.group(1) == "-", match.group(2)
        numbers = {"Y": day.year, "m": day.month, "d": day.day, "H": 0, "M": 0, "S": 0, "I": 12}
        if code in numbers:
            value = numbers[code]
            return str(value) if unpadded or code == "Y" else f"{value:02d}"
        names = {
            "y": f"{day.year % 100:02d}",
            "j": f"{day.timetuple().tm_yday:03d}",
            "B": MONTHS[day.month - 1],
            "b": MONTHS[day.month - 1][:3],
            "A": WEEKDAYS[day.weekday()],
            "a": WEEKDAYS[day.weekday()][:3],
            "p": "AM",
            "%": "%",
        }
        if code in names and not unpadded:
            return names[code]
        raise ValueError(f"strftime directive %{match.group(1)}{code} cannot be pinned")

    return DIRECTIVE.sub(field, fmt)


def pin_chat_date(template: str, chat_date: str) -> str:
    """`template` printing `chat_date` wherever it would print today's date.

    Formats written literally in the template are precomputed exactly; any other format falls
    back to replacing the common directives. A template that never asks for the date is
    returned unchanged (its bytes, and so its checkpoints' hashes, stay the same); pinning an
    already pinned template replaces the earlier pin.
    """
    if PIN_BEGIN in template:
        head, _, rest = template.partition(PIN_BEGIN)
        template = head + rest.partition(PIN_END)[2]
    if "strftime_now" not in template:
        return template
    day = date.fromisoformat(chat_date)
    exact = {fmt: format_date(fmt, day) for _, fmt in STRFTIME_CALL.findall(template)}
    table = json.dumps(exact, ensure_ascii=False, sort_keys=True)
    chain = "".join(
        f"|replace('%{code}', '{format_date('%' + code, day)}')"
        for code in ["-d", "-m", "Y", "y", "m", "d", "B", "b", "A", "a", "j"]
    )
    macro = (
        "{%- macro strftime_now(format) -%}{%- set exact = " + table + " -%}"
        "{{- exact[format] if format in exact else format" + chain + " -}}"
        "{%- endmacro -%}"
    )
    return PIN_BEGIN + macro + PIN_END + template
