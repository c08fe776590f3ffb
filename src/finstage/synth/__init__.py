"""Synthetic training data from pages: teachers, task builders, grounding checks, held-out split.

Layout: `pagetext` reads tables/facts from a page's text layer; one builder per task family
turns it into records (`ocr`, `caption`, `vqa` for 2-turn extractive questions, `finqa` for
computed finance questions, visual and text), sharing `tasks` (task names, what a question may
ask); `arith` computes and formats their answers; `grounding` re-verifies any teacher's records
against the page; `teacher` holds the `Teacher` protocol, the rule-based teacher and
`synthesize`; `split` decides held-out documents. Evaluation stand-ins live with their
benchmarks, in `finstage.benchmarks`.
"""

from finstage.synth.split import split_documents, visual_eval_items
from finstage.synth.tasks import TASKS
from finstage.synth.teacher import RuleTeacher, SynthConfig, Teacher, make_teacher, synthesize

__all__ = [
    "TASKS",
    "RuleTeacher",
    "SynthConfig",
    "Teacher",
    "make_teacher",
    "split_documents",
    "synthesize",
    "visual_eval_items",
]
