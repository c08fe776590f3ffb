"""The trajectory: every benchmark across phases, anchored to P0.

`phases` lists the phases compared; `trajectory` turns metrics files into rows; `recommend`
picks a checkpoint per task; `table` and `plot` render them; `outputs` writes the stage's files.
"""
