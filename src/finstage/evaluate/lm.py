"""Our checkpoint behind lm-eval's `LM` interface.

Every prompt goes through the checkpoint's own chat template as a single user turn, the same
way for every checkpoint, so phases differ only in weights. Text tasks are text-only (no
pixel values); images are scored by our own visual evaluator.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from lm_eval.api.instance import Instance
from lm_eval.api.model import LM
from tqdm import tqdm
from transformers import AutoTokenizer, LlavaForConditionalGeneration
from transformers.generation import StoppingCriteriaList, StopStringCriteria

from finstage.chat import ChatEncoder


class FinstageLM(LM):
    def __init__(
        self,
        model: LlavaForConditionalGeneration,
        tokenizer,
        batch_size: int = 8,
        max_length: int = 512,
    ):
        super().__init__()
        self.model = model.eval()
        self.tok = tokenizer
        self.batch_size = batch_size
        self.max_length = max_length
        self.encoder = ChatEncoder(
            tokenizer, model.config.image_token_id, model.config.image_seq_length, max_length
        )

    @classmethod
    def from_checkpoint(cls, path: Path, batch_size: int = 8, max_length: int = 512) -> FinstageLM:
        return cls(
            LlavaForConditionalGeneration.from_pretrained(path),
            AutoTokenizer.from_pretrained(path),
            batch_size,
            max_length,
        )

    def prompt_ids(self, context: str) -> list[int]:
        return self.encoder.encode_prompt([{"role": "user", "content": context}])

    def loglikelihood(
        self, requests: list[Instance], disable_tqdm: bool = False
    ) -> list[tuple[float, bool]]:
        pairs = []
        for req in requests:
            context, continuation = req.args[0], req.args[1]
            ctx = self.prompt_ids(context)
            cont = self.tok(continuation, add_special_tokens=False)["input_ids"]
            pairs.append((ctx, cont))
        return self._score(pairs, disable_tqdm)

    def loglikelihood_rolling(
        self, requests: list[Instance], disable_tqdm: bool = False
    ) -> list[float]:
        pairs = []
        for req in requests:
            ids = self.tok(req.args[0], add_special_tokens=False)["input_ids"]
            pairs.append(([self.tok.bos_token_id], ids))
        return [ll for ll, _ in self._score(pairs, disable_tqdm)]

    @torch.no_grad()
    def _score(
        self, pairs: list[tuple[list[int], list[int]]], disable_tqdm: bool
    ) -> list[tuple[float, bool]]:
        """Sum of continuation log-probs and whether greedy decoding would produce it.

        Only the positions that predict a continuation token reach the LM head and the softmax
        (a boolean `logits_to_keep`): contexts are long and continuations short, so projecting
        the context would be most of the LM head's work (and its largest tensor), never read.
        """
        results: list[tuple[float, bool]] = [(0.0, False)] * len(pairs)
        order = sorted(range(len(pairs)), key=lambda i: -len(pairs[i][0]) - len(pairs[i][1]))
        for start in tqdm(
            range(0, len(order), self.batch_size), disable=disable_tqdm, desc="loglikelihood"
        ):
            idx = order[start : start + self.batch_size]
            seqs = [(pairs[i][0] + pairs[i][1])[-self.max_length :] for i in idx]
            width = max(len(s) for s in seqs)
            ids = torch.full((len(seqs), width), self.tok.pad_token_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            keep = torch.zeros_like(ids, dtype=torch.bool)
            for row, (i, seq) in enumerate(zip(idx, seqs, strict=True)):
                ids[row, : len(seq)] = torch.tensor(seq)
                mask[row, : len(seq)] = 1
                keep[row, max(0, len(seq) - len(pairs[i][1]) - 1) : len(seq) - 1] = True
            logits = self.model(input_ids=ids, attention_mask=mask, logits_to_keep=keep).logits
            logprobs = F.log_softmax(logits.float(), dim=-1).split(keep.sum(1).tolist())
            targets = ids[:, 1:][keep[:, :-1]].split(keep.sum(1).tolist())
            for row, i in enumerate(idx):
                token_lp = logprobs[row].gather(-1, targets[row].unsqueeze(-1))
                greedy = bool((logprobs[row].argmax(-1) == targets[row]).all())
                results[i] = (float(token_lp.sum()), greedy)
        return results

    @torch.no_grad()
    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        """Greedy continuations, each cut at its first `until` string.

        Requests are batched with others that share their `until` list, so decoding can stop
        as soon as every sequence of the batch has produced one of its stop strings instead of
        running to `max_gen_toks`; the cut afterwards is what defines the output.
        """
        outputs: list[str] = [""] * len(requests)
        prompts = [self.prompt_ids(req.args[0]) for req in requests]
        kwargs = [dict(req.args[1]) for req in requests]
        stops = [tuple(s for s in kwargs[i].get("until") or [] if s) for i in range(len(requests))]
        groups: dict[tuple[str, ...], list[int]] = {}
        for i in sorted(range(len(requests)), key=lambda i: -len(prompts[i])):
            groups.setdefault(stops[i], []).append(i)
        batches = [
            g[k : k + self.batch_size]
            for g in groups.values()
            for k in range(0, len(g), self.batch_size)
        ]
        # Built once per stop list: building one walks the whole vocabulary.
        criteria = {until: StopStringCriteria(self.tok, list(until)) for until in groups if until}
        for idx in tqdm(batches, disable=disable_tqdm, desc="generate"):
            max_new = max(int(kwargs[i].get("max_gen_toks", 256)) for i in idx)
            stop = criteria.get(stops[idx[0]])
            texts = self.generate_ids([prompts[i] for i in idx], max_new, stop)
            for i, text in zip(idx, texts, strict=True):
                outputs[i] = _cut(text, list(stops[i]))
        return outputs

    def generate_ids(
        self,
        prompts: list[list[int]],
        max_new_tokens: int,
        stop: StopStringCriteria | None = None,
        pixel_values: torch.Tensor | None = None,
    ) -> list[str]:
        """Greedy decoding of left-padded prompts; returns the decoded continuations."""
        width = max(len(p) for p in prompts)
        budget = max(1, min(max_new_tokens, self.max_length - width))
        ids = torch.full((len(prompts), width), self.tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, p in enumerate(prompts):
            ids[row, width - len(p) :] = torch.tensor(p)
            mask[row, width - len(p) :] = 1
        extra: dict = {"pixel_values": pixel_values} if pixel_values is not None else {}
        if stop is not None:
            extra["stopping_criteria"] = StoppingCriteriaList([stop])
        out = self.model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=budget,
            do_sample=False,
            eos_token_id=self.tok.eos_token_id,
            pad_token_id=self.tok.pad_token_id,
            **extra,
        )
        return self.tok.batch_decode(out[:, width:], skip_special_tokens=True)


def _cut(text: str, until: list[str]) -> str:
    for stop in until:
        if stop and stop in text:
            text = text[: text.index(stop)]
    return text
