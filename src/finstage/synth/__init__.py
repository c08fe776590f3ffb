"""Synthetic training data from pages: teachers, task builders, grounding checks, held-out split.

Layout: `pagetext` reads tables/facts from a page's text layer; `tasks` builds OCR, caption,
2-turn VQA and finance-QA records from it; `grounding` re-verifies any teacher's records against
the page; `teacher` holds the `Teacher` protocol, the rule-based teacher and `synthesize`;
`split` decides held-out documents; `benchmarks` generates evaluation stand-ins.
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
