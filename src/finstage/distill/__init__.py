"""Math chain-of-thought distillation (P2): generated problems, a reasoning teacher, verification.

`problems` generates Japanese arithmetic word problems with gold answers computed in code;
`teacher` renders `<Problem>/<Thinking>/<Answer>\\boxed{}` traces and keeps verified ones;
`verify` holds the answer extractor shared with evaluation (`extract_boxed`, `numbers_equal`).
"""

from finstage.distill.verify import extract_boxed, extract_final_answer, numbers_equal, parse_number

__all__ = ["extract_boxed", "extract_final_answer", "numbers_equal", "parse_number"]
