"""The trajectory: every benchmark across phases, anchored to P0.

The phases compared are `report.phases` in params (checkpoint -> label, in report order).
`trajectory` turns metrics files into rows; `recommend` picks a checkpoint per task; `table` and
`plot` render them; `outputs` writes the stage's files.
"""
