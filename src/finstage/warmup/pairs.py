"""Japanese instruction/response pairs that teach a randomly initialised P0 to follow a prompt.

The recipe's P0 is an instruction model: it already answers in the format a prompt asks for.
The embedded P0 is built from a config, so before any recipe stage it practises the answer
formats the benchmarks ask for: XML math traces ending in `<Answer>\\boxed{…}</Answer>`, short
answers, one multiple-choice letter, a `{"prob": …}` JSON object. Without prompts that name the
trace format, a tiny model trained on traces stops after `<Problem>` (measured: GSM8K parse
coverage 0.075 after P2, against 0.90 with them), so a share of math prompts names it, in
wordings of our own: the GSM8K stand-in's prompt and templates stay unseen.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from finstage.records import IMAGE_MARKER, Record, make_record
from finstage.traces import format_trace
from finstage.wordproblems import generate_problems, run, solution_lines

# Math prompts; "{q}" is the question. The ones naming the trace format are paraphrases, never
# the wording of the benchmark prompt.
PLAIN = ("{q}", "次の問題を解いてください。\n{q}", "問題: {q}\n考え方を示してから答えてください。")
FORMAT = (
    "以下の問題を解き、答えを <Answer>\\boxed{{答え}}</Answer> の形式で示してください。\n{q}",
    "{q}\n解き方を書き、最後に <Answer>\\boxed{{数}}</Answer> と答えてください。",
    "次の問題に答えてください。答えは\\boxed{{}}に入れてください。\n{q}",
)
ITEMS = ("りんご", "ノート", "鉛筆", "牛乳", "パン", "シャツ", "おにぎり", "消しゴム")
COLOURS = ("赤", "白", "青", "黒")
LETTERS = "ABCD"


@dataclass(frozen=True)
class PairCounts:
    math: int  # XML traces from `distill.templates`
    format_share: float  # share of math prompts that name the trace format
    short: int  # short answers taken from the synthesised text QA
    page: int  # page questions answered from the quoted passage instead of the page image
    choice: int  # one-letter multiple-choice answers
    json: int  # {"prob": x} answers


def math_pairs(n: int, share: float, templates: list[str], seed: int) -> list[Record]:
    rng = random.Random(f"warmup-math-{seed}")
    out = []
    for problem in generate_problems(n, seed, "warmup", templates):
        answer = run(problem)[problem.steps[-1].out]
        prompt = rng.choice(FORMAT if rng.random() < share else PLAIN).format(q=problem.question)
        trace = format_trace(problem, solution_lines(problem), answer)
        out.append(pair(f"warmup-math-{problem.id}", "warmup_math", prompt, trace))
    return out


def choice_pairs(n: int, seed: int) -> list[Record]:
    """Arithmetic and shopping questions with four options; the answer is one letter."""
    rng = random.Random(f"warmup-choice-{seed}")
    out = []
    for i in range(n):
        if rng.random() < 0.5:
            a, b = rng.randint(2, 99), rng.randint(2, 99)
            op, value = rng.choice((("+", a + b), ("−", a - b), ("×", a * b)))
            question = f"{a} {op} {b} の値として正しいものを選んでください。"
        else:
            item, price, k = rng.choice(ITEMS), rng.randrange(50, 1001, 10), rng.randint(2, 9)
            value = price * k
            question = f"1個{price}円の{item}を{k}個買うと代金はいくらですか。"
        options = {value}
        while len(options) < len(LETTERS):
            options.add(value + rng.choice((-1, 1)) * rng.randint(1, abs(value) // 5 + 2))
        shuffled = sorted(options)
        rng.shuffle(shuffled)
        body = "\n".join(f"{letter}. {o}" for letter, o in zip(LETTERS, shuffled, strict=True))
        prompt = f"{question}\n{body}\n答えは記号（A〜D）だけで答えてください。"
        out.append(
            pair(f"warmup-choice-{i}", "warmup_choice", prompt, LETTERS[shuffled.index(value)])
        )
    return out


def json_pairs(n: int, seed: int) -> list[Record]:
    """Probabilities of drawing a colour, answered as a JSON object with a `prob` key."""
    rng = random.Random(f"warmup-json-{seed}")
    out = []
    for i in range(n):
        first, second = rng.sample(COLOURS, 2)
        total = rng.choice((4, 5, 8, 10, 20))
        hits = rng.randint(1, total - 1)
        prompt = (
            f"袋の中に{first}玉が{hits}個、{second}玉が{total - hits}個入っています。"
            f'1個取り出すとき{first}玉である確率を、JSON {{"prob": 数値}} の形で答えてください。'
        )
        out.append(pair(f"warmup-json-{i}", "warmup_json", prompt, f'{{"prob": {hits / total:g}}}'))
    return out


def short_pairs(records: Iterable[Record], n: int) -> list[Record]:
    """The first `n` synthesised text-QA records, as they are: questions on table figures."""
    out = []
    for record in records:
        if len(out) == n:
            break
        out.append(make_record(f"warmup-short-{record['id']}", "warmup_short", record["messages"]))
    return out


def page_pairs(records: Iterable[Record], n: int) -> list[Record]:
    """The first `n` page questions, asked over the passage the answer is quoted from.

    A VQA record asks about a page image, then for the passage that answers it. Given that
    passage as text, the question becomes reading comprehension an instruction model already
    does; P1 then only has to learn where the passage comes from (the image), not how to answer.
    """
    out = []
    for record in records:
        if len(out) == n:
            break
        messages = record["messages"]
        question = messages[0]["content"].replace(IMAGE_MARKER, "").strip()
        passage, answer = messages[3]["content"], messages[1]["content"]
        prompt = f"次の記載をもとに答えてください。\n{passage}\n質問：{question}"
        out.append(pair(f"warmup-page-{record['id']}", "warmup_page", prompt, answer))
    return out


def pair(rid: str, source: str, prompt: str, answer: str) -> Record:
    return make_record(
        rid, source, [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
    )


def warmup_pairs(
    counts: PairCounts,
    templates: list[str],
    short_qa: Iterable[Record],
    page_qa: Iterable[Record],
    seed: int,
) -> list[Record]:
    """Every pair, shuffled together so each batch mixes the formats."""
    pairs = (
        math_pairs(counts.math, counts.format_share, templates, seed)
        + short_pairs(short_qa, counts.short)
        + page_pairs(page_qa, counts.page)
        + choice_pairs(counts.choice, seed)
        + json_pairs(counts.json, seed)
    )
    random.Random(f"warmup-order-{seed}").shuffle(pairs)
    return pairs
