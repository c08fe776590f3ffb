"""Math chain-of-thought distillation (P2): a reasoning teacher and verification.

`teacher` solves the word problems of `finstage.wordproblems` (gold answers computed in code),
renders `<Problem>/<Thinking>/<Answer>\\boxed{}` traces and keeps the ones whose boxed answer
`finstage.answers` verifies against the gold answer.
"""
