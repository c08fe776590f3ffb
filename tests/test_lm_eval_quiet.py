"""lm-eval's per-task notes are dropped during our evaluation; its real warnings are not."""

from __future__ import annotations

import logging

import lm_eval.api.task as task_module

from finstage.evaluate.quiet import lm_eval_quiet


def test_only_the_notes_are_dropped_and_only_inside(caplog):
    task_logger = logging.getLogger("lm_eval.api.task")
    note = "fp2: Custom kwargs can be passed to `--metadata` in console"
    with caplog.at_level(logging.WARNING):
        with lm_eval_quiet():
            task_logger.warning(note)
            logging.getLogger("lm_eval.evaluator").warning(
                "Overwriting default num_fewshot of %s from %s to %s", "fp2", None, 0
            )
            task_logger.warning("fp2: a document has no answer")
            assert list(task_module.tqdm(range(3))) == [0, 1, 2]
            assert task_module.tqdm(range(3)).disable
        task_logger.warning(note)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["fp2: a document has no answer", note]
    assert not task_module.tqdm(range(3)).disable
