"""`model.chat_date`: a template that prints today's date prints the pinned one instead.

Harmony (llm-jp-4) puts `Current date: {{ strftime_now('%Y-%m-%d') }}` in every system message;
unpinned, every prompt and every hash downstream would change at midnight.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import transformers.utils.chat_template_utils as template_utils
from transformers import AutoTokenizer

from finstage.config import ParamsError, parse
from finstage.model.assemble import ModelConfig
from finstage.model.base import build_base
from finstage.model.tokenizer import (
    CHAT_TEMPLATE,
    format_date,
    pin_chat_date,
    train_tokenizer,
)

from .conftest import TEXTS, repo_params, tiny_model_config
from .standin_llm import build_standin, build_tokenizer

MESSAGES = [{"role": "user", "content": "歳出合計は?"}]


def on_day(monkeypatch, day: dt.datetime) -> None:
    """Make transformers' `strftime_now` believe today is `day`."""

    class Frozen(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return day

    monkeypatch.setattr(template_utils, "datetime", Frozen)


def render(tok, **kwargs) -> str:
    return tok.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True, **kwargs)


def test_unpinned_harmony_prompt_changes_with_the_day(monkeypatch):
    tok = build_tokenizer()
    on_day(monkeypatch, dt.datetime(2027, 3, 4, 15, 0))
    first = render(tok)
    on_day(monkeypatch, dt.datetime(2027, 3, 5, 9, 0))
    assert render(tok) != first and "Current date: 2027-03-05" in render(tok)


def test_pinned_harmony_prompt_is_the_same_every_day(monkeypatch):
    tok = build_tokenizer()
    tok.chat_template = pin_chat_date(tok.chat_template, "2026-01-01")
    seen = set()
    for day in (dt.datetime(2027, 3, 4, 23, 59), dt.datetime(2031, 12, 25, 0, 1)):
        on_day(monkeypatch, day)
        seen.add(render(tok))
    (text,) = seen
    assert "Current date: 2026-01-01\n" in text


@pytest.mark.parametrize(
    "fmt", ["%Y-%m-%d", "%d %b %Y", "%A, %B %d, %Y", "%a %y %j", "%Y年%m月%d日", "100%% %H:%M"]
)
@pytest.mark.parametrize("day", [dt.date(2026, 1, 1), dt.date(2028, 2, 29), dt.date(2031, 12, 7)])
def test_format_date_is_strftime_at_midnight(fmt: str, day: dt.date):
    assert format_date(fmt, day) == dt.datetime.combine(day, dt.time()).strftime(fmt)


def test_unpadded_directives_and_unsupported_ones():
    assert format_date("%-d/%-m", dt.date(2026, 3, 7)) == "7/3"
    with pytest.raises(ValueError, match="%Z"):
        format_date("%Z", dt.date(2026, 3, 7))


def test_pinned_date_reaches_macros_computed_formats_and_defined_checks(monkeypatch):
    on_day(monkeypatch, dt.datetime(2027, 3, 4))
    template = (
        "{%- macro header() -%}[{{ strftime_now('%d %b %Y') }}]{%- endmacro -%}\n"
        "{%- if strftime_now is defined %}{{ header() }}{% endif %}"
        "{% set fmt = '%B ' ~ '%-d' %}{{ strftime_now(fmt) }}"
    )
    tok = train_tokenizer(TEXTS, 300)
    pinned = pin_chat_date(template, "2026-01-05")
    assert render(tok, chat_template=pinned) == "[05 Jan 2026]January 5"


def test_pinning_keeps_every_other_byte_and_can_be_redone(monkeypatch):
    on_day(monkeypatch, dt.datetime(2026, 1, 1))
    tok = build_tokenizer()
    template = "\n  " + tok.chat_template  # a leading newline survives trim_blocks
    pinned = pin_chat_date(template, "2026-01-01")
    assert render(tok, chat_template=pinned) == render(tok, chat_template=template)
    assert pin_chat_date(pin_chat_date(template, "2025-05-05"), "2026-01-01") == pinned


def test_template_without_a_date_is_left_byte_identical():
    assert pin_chat_date(CHAT_TEMPLATE, "2026-01-01") == CHAT_TEMPLATE


@pytest.mark.parametrize("bad", ["2026-02-30", "2026/01/01", "20260101", "today", ""])
def test_chat_date_must_be_a_real_iso_date(bad: str):
    raw = repo_params()["model"] | {"chat_date": bad}
    with pytest.raises(ParamsError, match=r"model\.chat_date"):
        parse(ModelConfig, raw, "model")


def test_unquoted_yaml_date_names_the_key():
    raw = repo_params()["model"] | {"chat_date": dt.date(2026, 1, 1)}
    with pytest.raises(ParamsError, match=r"model\.chat_date"):
        parse(ModelConfig, raw, "model")


def test_base_saves_a_pinned_template_for_a_pretrained_model(tmp_path: Path, monkeypatch):
    standin = build_standin(tmp_path / "standin")
    cfg = tiny_model_config()
    cfg.llm.pretrained, cfg.llm.config = str(standin), {}
    cfg.tokenizer.pretrained = str(standin)
    cfg.chat_date = "2026-02-03"
    card = build_base(cfg, [], tmp_path / "no-warmup", tmp_path / "p0")
    assert card["params"]["chat_date"] == "2026-02-03"
    saved = json.loads((tmp_path / "p0" / "tokenizer_config.json").read_text())
    template = saved.get("chat_template") or (tmp_path / "p0" / "chat_template.jinja").read_text()
    assert "2026-02-03" in template
    tok = AutoTokenizer.from_pretrained(tmp_path / "p0")
    texts = set()
    for day in (dt.datetime(2027, 3, 4), dt.datetime(2030, 8, 9)):
        on_day(monkeypatch, day)
        texts.add(render(tok))
    (text,) = texts
    assert "Current date: 2026-02-03\n" in text and text.endswith("<|start|>assistant")
