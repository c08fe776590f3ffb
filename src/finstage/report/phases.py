"""The phases the trajectory report compares: the one list of (phase label, checkpoint)."""

# (label, checkpoint) in reporting order; p1_s1 is shown because it isolates projector alignment.
PHASES = [
    ("P0", "p0"),
    ("P1-S1", "p1_s1"),
    ("P1", "p1_s2"),
    ("P2", "p2_s1"),
    ("P3-1", "p3_s1"),
    ("P3", "p3_s2"),
]
BASELINE = PHASES[0][0]  # every change is measured against the untouched base model
