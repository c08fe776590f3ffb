"""Text benchmarks, one home per family: GSM8K, chABSA, the pfnet exams, CPA audit, EDINET-Bench.

Each family module owns everything about its benchmarks: the generated stand-in written in the
public raw schema (so pointing evaluation at the real data is only a path change), the reader
of that schema, the lm-eval task definitions with their per-item scorers, and the item text the
decontamination check looks for in training data. `registry` lists them in report order;
`transport` is the one place raw data is fetched (a path, a hub dataset or a pinned URL).

A shared component: it imports only config, records, scoring, answers, word problems and text
helpers, never a stage package.
"""
