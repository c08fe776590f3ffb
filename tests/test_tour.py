"""The README's tour, run as written: every command of its bash blocks, in a temporary clone.

`pytest -m tour` runs the whole tour (a full `dvc repro`, three experiments, a queued sweep, a
local-directory remote and a teammate's clone: about 17 minutes on 2 cores) and checks that each
command exits 0 and does what the README says. The default test run leaves it out, but always
checks the cheap half of the contract: the tour below holds exactly the command lines of the
README's tour, so editing one without the other fails at once.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT
from .shell import copy_checkout, sh

README = ROOT / "README.md"
TIMEOUT_S = 1800  # one command; the first `dvc repro` is the longest (about 5 minutes)


@dataclass
class Tour:
    """The state a tour carries from one command to the next."""

    repo: Path  # the user's clone
    remote: Path  # stands for /mnt/nas/finstage
    cwd: Path
    exp_name: str = ""
    notes: list[str] = field(default_factory=list)

    def substitute(self, command: str) -> str:
        return (
            command.replace("<exp-name>", self.exp_name)
            .replace("<your-repo>", str(self.repo))
            .replace("/mnt/nas/finstage", str(self.remote))
        )


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def lock_outs(repo: Path) -> dict[str, str]:
    stages = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    return {o["path"]: o["md5"] for s in stages.values() for o in s.get("outs", [])}


def up_to_date(tour: Tour, where: Path | None = None) -> None:
    status = sh("dvc", "status", cwd=where or tour.repo)
    assert "up to date" in status.lower(), status


def card_lora_r(tour: Tour, stage: str) -> int:
    card = json.loads((tour.repo / "models" / stage / "card.json").read_text())
    return card["params"]["lora"]["r"]


# --- what each command must do, beyond exiting 0 ---


def baseline(tour: Tour, out: str) -> None:
    sh("git", "diff", "--quiet", "dvc.lock", cwd=tour.repo)
    committed = "baseline on this machine" in sh("git", "log", "-1", "--format=%s", cwd=tour.repo)
    tour.notes.append(f"baseline commit needed: {committed}")


def first_repro(tour: Tour, out: str) -> None:
    assert {"validate", "corpus", "base", "train@p3_s2", "report"} <= ran(out), out
    up_to_date(tour)


def dag(tour: Tour, out: str) -> None:
    assert "validate" in out and "base" in out, out
    assert max(len(line.rstrip()) for line in out.splitlines()) <= 80, out


def trajectory(tour: Tour, out: str) -> None:
    assert "| benchmark" in out and "## Which checkpoint" in out, out


def plots_show(tour: Tour, out: str) -> None:
    html = (tour.repo / "dvc_plots" / "index.html").read_text()
    assert "train_loss" in html and "trajectory" in html, html[:2000]


def reruns(*expected: str) -> Callable[[Tour, str], None]:
    def check(tour: Tour, out: str) -> None:
        assert ran(out) == {"validate", *expected}, out
        names = re.findall(r"Ran experiment\(s\): (\S+)", out)
        assert names, out
        tour.exp_name = names[-1]

    return check


def rank_32(tour: Tour, out: str) -> None:
    reruns("train@p3_s2", "evaluate@p3_s2", "report")(tour, out)
    assert card_lora_r(tour, "p3_s2") == 32


def lr_change(tour: Tour, out: str) -> None:
    later = ("p2_s1", "p3_s1", "p3_s2")
    reruns(*(f"train@{s}" for s in later), *(f"evaluate@{s}" for s in later), "report")(tour, out)


def back_to_committed(tour: Tour, out: str) -> None:
    sh("git", "diff", "--quiet", "HEAD", "--", "params.yaml", "dvc.lock", cwd=tour.repo)
    up_to_date(tour)
    assert card_lora_r(tour, "p3_s2") == 16
    head = yaml.safe_load(sh("git", "show", "HEAD:dvc.lock", cwd=tour.repo))["stages"]
    assert lock_outs(tour.repo) == {
        o["path"]: o["md5"] for s in head.values() for o in s.get("outs", [])
    }


def metrics_diff(tour: Tour, out: str) -> None:
    paths = set(re.findall(r"^(metrics/eval/\S+)", out, flags=re.M))
    assert paths == {"metrics/eval/p3_s2.json"}, out
    tour.notes.append("dvc metrics diff:\n" + out)


def exp_show(tour: Tour, out: str) -> None:
    assert "train.p3_s2.lora.r" in out and "finharness.avg.P3" in out, out
    assert max(len(line.rstrip()) for line in out.splitlines()) <= 120, out


def exp_diff(tour: Tour, out: str) -> None:
    row = next(line for line in out.splitlines() if "train.p3_s2.lora.r" in line)
    assert row.split()[-3:] == ["16", "32", "16"], out  # HEAD, the experiment, the change


def plots_diff(tour: Tour, out: str) -> None:
    assert "WARNING" not in out and "failed" not in out.lower(), out
    html = (tour.repo / "dvc_plots" / "index.html").read_text()
    assert tour.exp_name in html and "loss.tsv" in html, html[:2000]


def sweep(tour: Tour, out: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        status = sh("dvc", "queue", "status", cwd=tour.repo)
        if not re.search(r"\b(Queued|Running)\b", status):
            break
        time.sleep(15)
    assert len(re.findall(r"\bSuccess\b", status)) == 3, status


def queue_status(tour: Tour, out: str) -> None:
    assert "Success" in out, out


def pushed(tour: Tour, out: str) -> None:
    assert (tour.remote / "files" / "md5").is_dir() and (tour.remote / "runs").is_dir(), out


def teammate_pull(tour: Tour, out: str) -> None:
    assert not ran(out), out
    up_to_date(tour, tour.cwd)
    assert lock_outs(tour.cwd) == lock_outs(tour.repo)


def exits_zero(tour: Tour, out: str) -> None:
    """Nothing more to check than the exit status (the next command relies on its effect)."""


BASELINE = 'git diff --quiet dvc.lock || git commit -qm "baseline on this machine" dvc.lock'
BACK = "git checkout params.yaml dvc.lock && dvc checkout"
EXP_SHOW = (
    "dvc exp show --drop '.*' --keep 'Experiment|train.p3_s2.lora.r|"
    "(gsm8k.em_flexible|finharness.avg|edinet_fraud.roc_auc)\\.P3$'"
)
CLONE = "git clone <your-repo> finstage-teammate && cd finstage-teammate"

# (command as the README writes it, check, run from the clone's parent folder)
STEPS: list[tuple[str, Callable[[Tour, str], None], bool]] = [
    ("dvc repro", first_repro, False),
    (BASELINE, baseline, False),
    ("dvc dag base", dag, False),
    ("cat metrics/trajectory.md", trajectory, False),
    ("dvc plots show", plots_show, False),
    ("dvc exp run -S train.p3_s2.lora.r=32", rank_32, False),
    ("dvc metrics diff", metrics_diff, False),
    (EXP_SHOW, exp_show, False),
    ("dvc exp diff HEAD <exp-name>", exp_diff, False),
    (
        "dvc plots diff HEAD <exp-name> --targets metrics/train/p3_s2/plots/metrics/loss.tsv",
        plots_diff,
        False,
    ),
    (BACK, back_to_committed, False),
    ("dvc exp run -S train.p2_s1.lr.llm=1e-3", lr_change, False),
    (BACK, back_to_committed, False),
    ("dvc exp run --queue -S 'train.p3_s1.lora.r=8,16,32' && dvc queue start", sweep, False),
    ("dvc queue status", queue_status, False),
    ("dvc remote add -d storage /mnt/nas/finstage", exits_zero, False),
    ('git commit -m "DVC remote" .dvc/config', exits_zero, False),
    ("dvc push --run-cache", pushed, False),
    (CLONE, exits_zero, True),
    ("dvc pull --run-cache && dvc repro", teammate_pull, False),
]


def readme_tour_commands() -> set[str]:
    """Every command line of the bash blocks in the README's `## Tour` section, comments cut."""
    text = README.read_text()
    section = text[text.index("\n## Tour\n") :]
    section = section[: section.index("\n## ", 1)]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    lines = (line.split("  #")[0].strip() for block in blocks for line in block.splitlines())
    return {line for line in lines if line and not line.startswith("#")}


def test_the_tour_holds_exactly_the_readme_commands():
    assert {command for command, _, _ in STEPS} - {"dvc repro"} == readme_tour_commands()


def run_step(tour: Tour, command: str, from_parent: bool) -> str:
    """Run one README line through bash; follow a trailing `cd` as a user's shell would."""
    cwd = tour.repo.parent if from_parent else tour.cwd
    pwd = tour.repo.parent / ".tour-pwd"
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "COLUMNS": "120",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    done = subprocess.run(
        ["bash", "-c", f"set -e; {tour.substitute(command)}; pwd > {pwd}"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"`{command}` exited {done.returncode}:\n{output[-6000:]}"
    tour.cwd = Path(pwd.read_text().strip())
    return output


@pytest.mark.tour
def test_the_readme_tour_works_as_written(tmp_path):
    repo = tmp_path / "finstage"
    copy_checkout(ROOT, repo)
    for command in (("git", "init", "-q", "-b", "main"), ("git", "add", "-A")):
        sh(*command, cwd=repo)
    sh(
        "git",
        "-c",
        "user.name=tour",
        "-c",
        "user.email=tour@localhost",
        "commit",
        "-qm",
        "clone",
        cwd=repo,
    )
    sh("git", "config", "user.name", "tour", cwd=repo)
    sh("git", "config", "user.email", "tour@localhost", cwd=repo)
    tour = Tour(repo=repo, remote=tmp_path / "remote", cwd=repo)
    timings = []
    for command, check, from_parent in STEPS:
        start = time.monotonic()
        output = run_step(tour, command, from_parent)
        check(tour, output)
        timings.append(f"{time.monotonic() - start:7.1f} s  {command}")
    print("\n".join(timings + tour.notes))
