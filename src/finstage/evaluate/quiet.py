"""lm-eval's per-task notes that say nothing about a finstage run, kept off the stage's log.

We hand lm-eval every task as a config with its own dataset function and ask for 0 shots on
purpose, so each of its eleven tasks prints two notes about exactly that, plus a progress bar
for building a few dozen prompts. Together they bury the score table the evaluate stage prints.
Real warnings still get through: only these notes are dropped, and only during our call.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager

NOTES = ("Custom kwargs can be passed", "Overwriting default num_fewshot")
LOGGERS = ("lm_eval.api.task", "lm_eval.evaluator")


class _DropNotes(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(note in message for note in NOTES)


@contextmanager
def lm_eval_quiet() -> Iterator[None]:
    """Drop lm-eval's notes above and its prompt-building bars while the block runs."""
    import lm_eval.api.task as task_module

    drop = _DropNotes()
    loggers = [logging.getLogger(name) for name in LOGGERS]
    bar = task_module.tqdm
    for logger in loggers:
        logger.addFilter(drop)
    task_module.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        task_module.tqdm = bar
        for logger in loggers:
            logger.removeFilter(drop)
