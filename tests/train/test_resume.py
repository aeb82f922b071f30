"""The acceptance test of `fit`: SIGKILL at an arbitrary moment, resume, identical weights.

`_resume_script.py` trains a small MLP (dropout, shuffling, AdamW, cosine + warm-up, gradient
clipping, numpy/python randomness in the step, Evaluator + EarlyStopping) for 60 steps with a
checkpoint every 7 steps, printing ``step N`` as it goes. For kill points drawn by a seeded
generator the script is killed with SIGKILL when it reports that step (it keeps running while
the signal is sent, so the kill lands anywhere, possibly inside a checkpoint write), then
rerun with the same out_dir. The final weights must equal those of an uninterrupted run bit
for bit, and the log must hold every step exactly once.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from perceptrons.io import load_tensors
from perceptrons.train import latest_checkpoint

SCRIPT = Path(__file__).with_name("_resume_script.py")
REPO = Path(__file__).resolve().parents[2]
STEPS, CHECKPOINT_EVERY, EVAL_EVERY = 60, 7, 5


def _command(out_dir: Path) -> list[str]:
    return [sys.executable, str(SCRIPT), str(out_dir), str(STEPS)]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


def _run_to_end(out_dir: Path) -> str:
    done = subprocess.run(
        _command(out_dir), capture_output=True, text=True, env=_env(), timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _run_and_kill(out_dir: Path, target: int) -> int:
    """Start the script, SIGKILL it when it reports ``target``; return the last step seen."""
    out_dir.mkdir(parents=True)
    with open(out_dir.parent / f"{out_dir.name}.stderr", "w") as stderr:
        child = subprocess.Popen(
            _command(out_dir), stdout=subprocess.PIPE, stderr=stderr, text=True, env=_env()
        )
        last = 0
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith("step "):
                last = int(line.split()[1])
                if last == target:
                    os.kill(child.pid, signal.SIGKILL)
                    break
        child.stdout.close()
        returncode = child.wait(timeout=60)
    assert returncode == -signal.SIGKILL, (out_dir / "..", returncode, last)
    return last


def _kill_and_resume(out_dir: Path, target: int) -> str:
    assert _run_and_kill(out_dir, target) == target
    return _run_to_end(out_dir)


def _final_weights(out_dir: Path) -> dict[str, torch.Tensor]:
    path = latest_checkpoint(out_dir / "checkpoints")
    assert path is not None and path.name == f"step_{STEPS:08d}"
    return load_tensors(path / "model.safetensors")


def _kill_points() -> list[int]:
    rng = random.Random(20250607)
    on_checkpoint = rng.choice(range(CHECKPOINT_EVERY, STEPS, CHECKPOINT_EVERY))
    anywhere = rng.sample([s for s in range(1, STEPS) if s != on_checkpoint], 2)
    return [on_checkpoint, *anywhere]


@pytest.mark.slow
def test_sigkill_and_resume_is_bit_identical(tmp_path):
    targets = _kill_points()
    with ThreadPoolExecutor(max_workers=1 + len(targets)) as pool:
        reference = pool.submit(_run_to_end, tmp_path / "reference")
        resumed = {t: pool.submit(_kill_and_resume, tmp_path / f"kill_{t}", t) for t in targets}
        assert reference.result().strip().endswith(f"done {STEPS} resumed_from None")
        outputs = {t: future.result() for t, future in resumed.items()}

    expected = _final_weights(tmp_path / "reference")
    for target, stdout in outputs.items():
        out_dir = tmp_path / f"kill_{target}"
        resumed_from = stdout.strip().splitlines()[-1].split()[-1]
        # the newest complete checkpoint at the kill: at or before the reported step
        assert resumed_from == "None" or (
            int(resumed_from) % CHECKPOINT_EVERY == 0 and int(resumed_from) <= target
        ), (target, resumed_from)
        weights = _final_weights(out_dir)
        assert weights.keys() == expected.keys()
        for name, tensor in expected.items():
            assert torch.equal(weights[name], tensor), (target, name)

        records = [
            json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()
        ]
        train = [r["step"] for r in records if r["split"] == "train"]
        val = [r["step"] for r in records if r["split"] == "val"]
        assert train == list(range(1, STEPS + 1)), target
        assert val == list(range(EVAL_EVERY, STEPS + 1, EVAL_EVERY)), target

        root = out_dir / "checkpoints"
        assert sorted(p.name for p in root.iterdir() if p.name.startswith(".")) == []
        for checkpoint in root.glob("step_*"):
            assert {p.suffix for p in checkpoint.iterdir()} <= {".safetensors", ".json"}
