"""Our checkpoint behind lm-eval's `LM` interface.

`chat_template` picks the prompt protocol. On, every context becomes one user turn of the
checkpoint's own chat template, the same way for every checkpoint, so phases differ only in
weights. Off, the context text is tokenised as-is (with the tokenizer's BOS if it adds one),
which is how pfnet's leaderboard scores, so our numbers can be set beside theirs. Tokenisation
and the window follow lm-eval's HF model (`tokens.py`, `window.py`): a stock `lm-eval --model hf`
run under the same protocol and window reproduces our per-item results. Text tasks are
text-only (no pixel values); images are scored by our own visual evaluator, always templated.

`max_length` is the window. What had to be cut to fit it is recorded per item in `truncated`
((task, doc id) → tokens cut) and what could not fit at all in `unscorable`; an unscorable
log-likelihood is `(-inf, False)` and an unscorable generation is "".
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from lm_eval.api.instance import Instance
from lm_eval.api.model import LM
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window
from tqdm import tqdm
from transformers import AutoTokenizer, LlavaForConditionalGeneration, PreTrainedTokenizerBase
from transformers.generation import StoppingCriteriaList, StopStringCriteria

from finstage.chat import ChatEncoder
from finstage.evaluate.devices import resolve_device
from finstage.evaluate.tokens import (
    context_ids,
    context_pair,
    decode_answer,
    message_marker_ids,
    prefix_token_id,
    render_context,
    text_ids,
)
from finstage.evaluate.window import Key, WindowLog, fit_pair, fit_prompt

Pair = tuple[list[int], list[int]]
DEFAULT_MAX_GEN_TOKS = 256  # lm-eval's HF model default when a task names none


class FinstageLM(LM):
    def __init__(
        self,
        model: LlavaForConditionalGeneration,
        tokenizer: PreTrainedTokenizerBase,
        batch_size: int,
        max_length: int,
        chat_template: bool,
        device: torch.device,
    ):
        super().__init__()
        self.model = model.to(device).eval()
        self._device = device  # lm-eval's `LM.device`
        self.tok = tokenizer
        self.batch_size = batch_size
        self.max_length = max_length
        self.templated = chat_template  # `LM.chat_template` is a method lm-eval may call
        self.image_token_id: int = model.config.image_token_id
        self.encoder = ChatEncoder(
            tokenizer, self.image_token_id, model.config.image_seq_length, max_length
        )
        self.markers = message_marker_ids(tokenizer)
        self.window = WindowLog()
        self.truncated = self.window.truncated
        self.unscorable = self.window.unscorable

    @classmethod
    def from_checkpoint(
        cls, path: Path, batch_size: int, max_length: int, chat_template: bool, device: str
    ) -> FinstageLM:
        """Loads in the checkpoint's saved dtype, straight onto the resolved `device`."""
        target = resolve_device(device)
        model = LlavaForConditionalGeneration.from_pretrained(
            path, dtype="auto", device_map=target, use_safetensors=True
        )
        tokenizer = AutoTokenizer.from_pretrained(path)
        return cls(model, tokenizer, batch_size, max_length, chat_template, target)

    def context_text(self, context: str) -> str:
        """The text the model reads before the answer: the rendered user turn (ending in the
        generation header) with the chat template on, the context itself with it off."""
        return render_context(self.tok, context, self.templated).text

    def prompt_ids(self, context: str) -> list[int]:
        """Generation prompt ids, before any cut to the window; the context is dataset text,
        so it never becomes special tokens (`tokens.context_ids`)."""
        return context_ids(self.tok, context, self.templated)

    def loglikelihood(
        self, requests: list[Instance], disable_tqdm: bool = False
    ) -> list[tuple[float, bool]]:
        """Templated, the rendered prompt and the continuation are encoded whole like a raw
        context: the same split `lm-eval --model hf --apply_chat_template` makes, and the same
        whole-text tokenisation training sees for an assistant turn after its header."""
        pairs: list[Pair | None] = []
        for req in requests:
            context, continuation = req.args[0], req.args[1]
            ctx, cont = context_pair(self.tok, context, continuation, self.templated)
            fitted = fit_pair(ctx, cont, self.max_length, self.image_token_id)
            ctx = self.window.record(_key(req), fitted)
            pairs.append(None if ctx is None else (ctx, cont))
        return self._score(pairs, disable_tqdm)

    def loglikelihood_rolling(
        self, requests: list[Instance], disable_tqdm: bool = False
    ) -> list[float]:
        """Whole-text log-likelihood over disjoint windows (lm-eval's rolling scheme)."""
        windows: list[Pair | None] = []
        owner: list[int] = []
        for r, req in enumerate(requests):
            tokens = text_ids(self.tok, req.args[0])
            for window in get_rolling_token_windows(
                tokens, prefix_token_id(self.tok), self.max_length, 1
            ):
                windows.append(make_disjoint_window(window))
                owner.append(r)
        totals = [0.0] * len(requests)
        for r, (ll, _) in zip(owner, self._score(windows, disable_tqdm), strict=True):
            totals[r] += ll
        return totals

    @torch.no_grad()
    def _score(self, pairs: list[Pair | None], disable_tqdm: bool) -> list[tuple[float, bool]]:
        """Sum of continuation log-probs and whether greedy decoding would produce it.

        Pairs must fit the window already (None: unscorable → (-inf, False)). The model reads
        context + continuation minus the last token. Only the positions that predict a
        continuation token reach the LM head and the softmax (a boolean `logits_to_keep`):
        contexts are long and continuations short, so projecting the context would be most of
        the LM head's work (and its largest tensor), never read.
        """
        results: list[tuple[float, bool]] = [(-math.inf, False)] * len(pairs)
        live = [i for i, p in enumerate(pairs) if p is not None]
        order = sorted(live, key=lambda i: -len(pairs[i][0]) - len(pairs[i][1]))
        for start in tqdm(
            range(0, len(order), self.batch_size), disable=disable_tqdm, desc="loglikelihood"
        ):
            idx = order[start : start + self.batch_size]
            seqs = [(pairs[i][0] + pairs[i][1])[:-1] for i in idx]
            conts = [pairs[i][1] for i in idx]
            width = max(len(s) for s in seqs)
            ids = torch.full((len(seqs), width), self.tok.pad_token_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            keep = torch.zeros_like(ids, dtype=torch.bool)
            for row, (seq, cont) in enumerate(zip(seqs, conts, strict=True)):
                ids[row, : len(seq)] = torch.tensor(seq)
                mask[row, : len(seq)] = 1
                keep[row, len(seq) - len(cont) : len(seq)] = True
            device = self.model.device
            logits = self.model(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                logits_to_keep=keep.to(device),
            ).logits
            counts = [len(c) for c in conts]
            logprobs = F.log_softmax(logits.float(), dim=-1).cpu().split(counts)
            for row, i in enumerate(idx):
                targets = torch.tensor(conts[row], dtype=torch.long)
                token_lp = logprobs[row].gather(-1, targets.unsqueeze(-1))
                greedy = bool((logprobs[row].argmax(-1) == targets).all())
                results[i] = (float(token_lp.sum()), greedy)
        return results

    @torch.no_grad()
    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        """Greedy continuations, each cut at its first `until` string, in request order.

        Every request gets its full `max_gen_toks` budget: its prompt is cut from the left to
        `max_length - max_gen_toks`. Requests are batched with others that share their `until`
        list and budget, longest prompts first, so a batch pads little and decoding can stop as
        soon as every sequence has produced one of its stop strings instead of running to the
        budget; the cut afterwards is what defines the output.
        """
        outputs: list[str] = [""] * len(requests)
        prompts: list[list[int] | None] = []
        budgets: list[int] = []
        stops: list[tuple[str, ...]] = []
        for req in requests:
            kwargs = dict(req.args[1])
            budgets.append(int(kwargs.get("max_gen_toks", DEFAULT_MAX_GEN_TOKS)))
            stops.append(tuple(s for s in kwargs.get("until") or [] if s))
            fitted = fit_prompt(
                self.prompt_ids(req.args[0]), self.max_length, budgets[-1], self.image_token_id
            )
            prompts.append(self.window.record(_key(req), fitted))
        groups: dict[tuple[tuple[str, ...], int], list[int]] = {}
        live = [i for i, p in enumerate(prompts) if p is not None]
        for i in sorted(live, key=lambda i: -len(prompts[i])):
            groups.setdefault((stops[i], budgets[i]), []).append(i)
        batches = [
            (key, g[k : k + self.batch_size])
            for key, g in groups.items()
            for k in range(0, len(g), self.batch_size)
        ]
        # Built once per stop list: building one walks the whole vocabulary.
        criteria = {
            until: StopStringCriteria(self.tok, list(until)) for until, _ in groups if until
        }
        for (until, budget), idx in tqdm(batches, disable=disable_tqdm, desc="generate"):
            texts = self.generate_ids([prompts[i] for i in idx], budget, criteria.get(until))
            for i, text in zip(idx, texts, strict=True):
                outputs[i] = _cut(text, list(until))
        return outputs

    def generate_ids(
        self,
        prompts: list[list[int]],
        max_new_tokens: int,
        stop: StopStringCriteria | None = None,
        pixel_values: torch.Tensor | None = None,
    ) -> list[str]:
        """Greedy decoding of prompts that fit the window; returns the decoded answers."""
        return [
            decode_answer(self.tok, ids, self.markers)
            for ids in self.generate_tokens(prompts, max_new_tokens, stop, pixel_values)
        ]

    @torch.no_grad()
    def generate_tokens(
        self,
        prompts: list[list[int]],
        max_new_tokens: int,
        stop: StopStringCriteria | None = None,
        pixel_values: torch.Tensor | None = None,
    ) -> list[list[int]]:
        """Greedy decoding of left-padded prompts: each row's new ids, exactly the budget asked.

        Left padding with the attention mask is safe: `generate` derives position ids from the
        mask, so a padded row decodes as it would alone (tested).
        """
        width = max(len(p) for p in prompts)
        if width + max_new_tokens > self.max_length:
            raise ValueError(
                f"prompt of {width} tokens + {max_new_tokens} new exceeds the window "
                f"({self.max_length}); fit it with window.fit_prompt first"
            )
        ids = torch.full((len(prompts), width), self.tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, p in enumerate(prompts):
            ids[row, width - len(p) :] = torch.tensor(p)
            mask[row, width - len(p) :] = 1
        device = self.model.device
        extra: dict = {}
        if pixel_values is not None:
            extra["pixel_values"] = pixel_values.to(device, self.model.dtype)
        if stop is not None:
            extra["stopping_criteria"] = StoppingCriteriaList([stop])
        out = self.model.generate(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=self.tok.eos_token_id,
            pad_token_id=self.tok.pad_token_id,
            **extra,
        )
        return out[:, width:].tolist()


def _key(req: Instance) -> Key:
    return (req.task_name, req.doc_id)


def _cut(text: str, until: list[str]) -> str:
    for stop in until:
        if stop and stop in text:
            text = text[: text.index(stop)]
    return text
