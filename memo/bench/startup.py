"""Start-up: process start to the end of the first optimizer step of real runs, with an
empty data cache (cold) and with the cache the cold run left (warm).

Two runs are timed, each in fresh processes started as a user starts them (memo's command
line, `memo.cli.run`, which is what `python run.py` runs):

- default: `python run.py` with the default config (built-in corpus, GloVe 50-d, the
  TensorBoard logger) in an empty folder; the start-up target applies to it;
- files: MOSEI-size files of random data in the release's layout (experiment=paper_mosei,
  embeddings=file, dataset.source=files): reading and converting the files (cold), then
  their cached arrays (warm).

The probe, `python -m memo.bench.startup OUT [override ...]`, registers two global hooks and
runs memo's command line with the overrides: a module forward pre-hook marks the start of
the first training step (its forward pass; removed after that call) and the first optimizer
step's post hook writes the times to OUT and ends the process. This module imports nothing
heavy at the top, so that the probe's own imports are the run's.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# Modules worth knowing about when they are loaded before the first step (start-up cost).
WATCHED = ("torch._dynamo", "tensorboard", "torch.utils.tensorboard", "sklearn", "scipy",
           "matplotlib", "h5py", "pyarrow", "pandas", "memo.report")  # fmt: skip


def _probe(out: Path, overrides: list[str]) -> None:
    """In this (fresh) process: memo's command line with `overrides`, ended by the first
    optimizer step's post hook, which writes the times (time.time()) to `out`."""
    started = time.time()
    from torch.nn.modules.module import register_module_forward_pre_hook
    from torch.optim.optimizer import register_optimizer_step_post_hook

    result: dict[str, Any] = {"started": started, "torch_imported": time.time()}

    def before(*_: Any) -> None:  # the first forward pass of the first batch begins
        result["step_started"] = time.time()
        result["loaded_before_step"] = [m for m in WATCHED if m in sys.modules]
        forward_hook.remove()

    def after(optimizer: Any, *_: Any) -> None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        if params and params[0].is_cuda:
            import torch

            torch.cuda.synchronize()
        result["first_step"] = time.time()
        result["cpu_s"] = time.process_time()
        out.write_text(json.dumps(result))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # the probe ends here; the rest of the run is not timed

    forward_hook = register_module_forward_pre_hook(before)  # removed on its first call
    register_optimizer_step_post_hook(after)
    sys.argv = ["run.py", *overrides]
    from memo.cli import run

    run()
    raise SystemExit("the probe run ended without a training step")


def _spawn(overrides: list[str], cwd: Path, threads: int) -> dict[str, float]:
    """One probe in a fresh process started in `cwd`; its phases in seconds."""
    import subprocess

    out = cwd / "probe.json"
    out.unlink(missing_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "memo.bench.startup", str(out), *overrides]
    spawned = time.time()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0 or not out.exists():
        raise SystemExit(f"start-up probe {overrides} failed:\n{done.stderr[-3000:]}")
    probe = json.loads(out.read_text())
    return {
        "to_first_step_s": probe["first_step"] - spawned,
        "interpreter_s": probe["started"] - spawned,
        "torch_import_s": probe["torch_imported"] - probe["started"],
        "to_step_start_s": probe["step_started"] - spawned,
        "first_step_s": probe["first_step"] - probe["step_started"],
        "cpu_s": probe["cpu_s"],
        "loaded_before_step": probe["loaded_before_step"],
    }


def _series(overrides: list[str], cwd: Path, threads: int, warm: int) -> dict[str, Any]:
    """A cold probe (the cache under `cwd` empty), then `warm` probes; medians."""
    from memo.bench.stats import median

    runs: dict[str, list[dict[str, Any]]] = {"cold": [], "warm": []}
    for n, kind in enumerate(["cold"] + ["warm"] * warm):
        runs[kind].append(_spawn([*overrides, f"hydra.run.dir={cwd / 'runs' / str(n)}"],
                                 cwd, threads))  # fmt: skip
    warm_runs = runs["warm"]
    return {
        "cold_s": runs["cold"][0]["to_first_step_s"],
        "warm_s": median([r["to_first_step_s"] for r in warm_runs]),
        "warm_min_s": min((r["to_first_step_s"] for r in warm_runs), default=float("nan")),
        "warm_cpu_s": median([r["cpu_s"] for r in warm_runs]),
        "warm_torch_import_s": median([r["torch_import_s"] for r in warm_runs]),
        "warm_first_step_s": median([r["first_step_s"] for r in warm_runs]),
        "loaded_before_step": warm_runs[-1]["loaded_before_step"] if warm_runs else [],
        "runs": runs,
    }


def measure_startup(args: Any, device: str) -> dict[str, Any]:
    """`python run.py` (default config) and the MOSEI-size files run, each cold and then
    `--startup-runs` times warm, every probe in a fresh process."""
    import tempfile

    from memo.bench.data import sizes, write_mosei_files

    common = [f"trainer.device={device}"]
    with tempfile.TemporaryDirectory(prefix="memo-startup-") as tmp:
        default_dir = Path(tmp) / "default"
        default_dir.mkdir()
        default = _series(common, default_dir, args.threads, args.startup_runs)
        folder = Path(tmp) / "mosei"
        written = time.perf_counter()
        vectors = write_mosei_files(folder, args.scale, args.seq_len)
        write_s = time.perf_counter() - written
        files_overrides = [
            "experiment=paper_mosei",
            "model=eea",
            "embeddings=file",
            f"embeddings.path={vectors}",
            "dataset.source=files",
            f"dataset.dir={folder}",
            f"paths.cache_dir={Path(tmp) / 'cache'}",
            "resume=false",
            *common,
        ]
        files = _series(files_overrides, Path(tmp), args.threads, args.startup_runs)
    return {
        "command": f"python run.py trainer.device={device}",  # in an empty folder
        "threads": args.threads,
        **default,
        "files": {
            "scale": args.scale,
            "samples": sum(sizes(args.scale).values()),
            "files_written_s": write_s,
            **files,
        },
    }


if __name__ == "__main__":
    _probe(Path(sys.argv[1]), sys.argv[2:])
