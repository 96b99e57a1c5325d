"""Benchmark of the training loop: throughput, epoch overhead, start-up, memory, precision.

    python -m memo.bench                                   # every model, fp32 and bf16
    python -m memo.bench --models eea --scaling --startup --parity

For each model and precision it trains on random tensors of CMU-MOSEI's size and shapes
(15290 / 2291 / 4832 samples at --scale 1, 20 steps, text 300-d, audio 74-d, visual
35-d, 6 emotions) with the paper's hyperparameters (experiment=paper_mosei, batch 64) and
measures, as medians over --epochs epochs after a warm-up:

- a full epoch through `Trainer.run_epoch` (the code `fit` runs: training, validation,
  metrics, TensorBoard, log, checkpoints) plus the test-split evaluation and its metrics
  and TensorBoard scalars; training and evaluation samples/s come from its phases;
- the compute floor: the same epoch's optimizer steps (`Trainer.train_step`: forward,
  backward, gradient clipping, update) and evaluation forwards on pre-made batches, nothing
  else; and the ratio epoch / floor, measured side by side in the same process;
- peak host memory (and GPU memory on CUDA) of the training process.

With --startup it times process start to the end of the first optimizer step of real runs
started as `python run.py` is (memo/bench/startup.py): the default config (the start-up
target) and MOSEI-layout files of random data (embeddings=file), each cold (empty data
cache) and --startup-runs times warm; --scaling times epochs at several dataset sizes and
sequence lengths; --parity trains EEA on the built-in corpus in fp32 and bf16 with the same
seed and compares test metrics; --precision-grid times fp32 against bf16 side by side in one
process per model, text size (--grid-text-dims: 50 is the built-in corpus's, 300 the paper's)
and batch size (--grid-batch-sizes); --text-dim sets the random data's text size for the
main grid too. Each measurement runs in its own process. Results: a table
on stdout and JSON (--out).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import typing
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import torch

from memo import schema
from memo.bench.machine import cores, describe
from memo.bench.measure import measure
from memo.bench.parity import (
    compare_precisions,
    format_precision_grid,
    measure_parity,
    measure_precision,
    precision_grid,
)
from memo.bench.report import format_report, scaling_table, targets
from memo.bench.startup import measure_startup
from memo.bench.workers import spawn
from memo.errors import MemoError
from memo.schema import NonNegativeInt, PositiveFloat, PositiveInt, Seed
from memo.training.trainer import PRECISIONS

MODELS = ("eea", "rnn_ef", "rnn_lf", "mult")
WORKERS = {"bench": measure, "parity": measure_parity, "precision": measure_precision}


def _worker(kind: str, spec_json: str, out: str) -> None:
    """One measurement in this (worker) process; its JSON result written to `out`."""
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", category=UserWarning)
    result = WORKERS[kind](json.loads(spec_json))
    Path(out).write_text(json.dumps(result))


def _specs(args: argparse.Namespace, device: str) -> tuple[list[dict], list[dict]]:
    """The main grid and the scaling grid (scaling entries already in the main grid reused)."""
    warmup_epochs = args.warmup_epochs
    if warmup_epochs is None:  # compilation and cuDNN autotuning need a whole epoch
        warmup_epochs = 1 if (device == "cuda" or args.compile) else 0
    base = {"device": device, "threads": args.threads, "batch_size": args.batch_size,
            "epochs": args.epochs, "warmup_batches": args.warmup_batches,
            "warmup_epochs": warmup_epochs, "compile": args.compile,
            "floor": not args.no_floor, "text_dim": args.text_dim}  # fmt: skip
    main = []
    both = set(PRECISIONS) <= set(args.precisions)
    if not args.skip_main:
        main = [
            {
                **base,
                "model": m,
                "precision": p,
                "scale": args.scale,
                "seq_len": args.seq_len,
                "side_by_side": both and p == "fp32",
            }  # fmt: skip
            for m in args.models
            for p in args.precisions
        ]
    scaling = []
    if args.scaling:  # sizes at --seq-len, then sequence lengths at the smallest size
        points = [(s, args.seq_len) for s in args.scaling_scales]
        points += [(min(args.scaling_scales), t) for t in args.scaling_seq_lens]
        scaling = [
            {**base, "model": m, "precision": args.precisions[0], "scale": s, "seq_len": t}
            for m in args.models
            for s, t in dict.fromkeys(points)
        ]
    return main, scaling


def _key(spec: dict[str, Any]) -> tuple:
    return (spec["model"], spec["precision"], spec["scale"], spec["seq_len"])


def _typed(hint: Any) -> Callable[[str], Any]:
    """An argparse `type` for a memo.schema type (`PositiveInt`, `list[PositiveFloat]`: a
    comma-separated list): the text read as numbers and checked against `hint`, or an error
    saying what is allowed."""
    listed = typing.get_origin(hint) is list
    item = typing.get_args(hint)[0] if listed else hint
    base = typing.get_args(item)[0] if typing.get_origin(item) is Annotated else item

    def parse(text: str) -> Any:
        try:
            value = [base(x) for x in text.split(",") if x.strip()] if listed else base(text)
            schema.check_value(value, hint, "")
        except (ValueError, MemoError):
            value = []
        if value == []:
            allowed = f"comma-separated, each {schema.describe(item)}" if listed else ""
            raise argparse.ArgumentTypeError(
                f"got {text!r}; allowed: {allowed or schema.describe(hint)}"
            )
        return value

    return parse


positive_int, non_negative_int, positive_float = map(
    _typed, (PositiveInt, NonNegativeInt, PositiveFloat)
)


def _device(text: str) -> str:
    """--device: auto, cpu, or cuda where there is a GPU (a MemoError traceback before)."""
    if text not in ("auto", "cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"got {text!r}; allowed: auto | cpu | cuda")
    if text == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError("got 'cuda'; allowed: auto | cpu (no CUDA device here)")
    return text


def _json_file(text: str) -> Path:
    """--out: a file to write, not a folder nor a path under a file."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; allowed: a JSON file's path")
    above = next((p for p in path.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise argparse.ArgumentTypeError(f"{above} is a file, so {text} cannot be written")
    return path


def _names(allowed: tuple[str, ...]):
    def parse(text: str) -> list[str]:
        names = [x for x in text.split(",") if x]
        unknown = [x for x in names if x not in allowed]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"{unknown or text!r}; allowed: {','.join(allowed)}")
        return names

    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line's options (this module's docstring is the help text)."""
    parser = argparse.ArgumentParser(
        prog="python -m memo.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--models", type=_names(MODELS), default=list(MODELS),
                        help="comma-separated (default: all)")  # fmt: skip
    parser.add_argument("--precisions", type=_names(tuple(PRECISIONS)), default=list(PRECISIONS),
                        help="comma-separated (default: fp32,bf16)")  # fmt: skip
    parser.add_argument("--scale", type=positive_float, default=1.0,
                        help="data size as a fraction of MOSEI's (default 1)")  # fmt: skip
    parser.add_argument("--seq-len", type=positive_int, default=20, help="time steps (default 20)")
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--epochs", type=positive_int, default=3, help="measured epochs (median)")
    parser.add_argument("--warmup-batches", type=non_negative_int, default=10)
    parser.add_argument("--warmup-epochs", type=non_negative_int, default=None,
                        help="untimed whole epochs first (default: 1 on CUDA or with "
                        "--compile, else 0)")  # fmt: skip
    parser.add_argument("--device", type=_device, default="auto", help="auto | cpu | cuda")
    parser.add_argument("--threads", type=positive_int, default=cores(),
                        help="torch threads and OMP_NUM_THREADS (default: all cores)")  # fmt: skip
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--no-floor", action="store_true", help="skip the compute floor")
    parser.add_argument("--skip-main", action="store_true", help="only the chosen extras")
    parser.add_argument("--scaling", action="store_true",
                        help="also time epochs at other sizes and sequence lengths")  # fmt: skip
    parser.add_argument("--scaling-scales", type=_typed(list[PositiveFloat]),
                        default=[0.25, 0.5, 1.0],
                        help="sizes timed at --seq-len (default 0.25,0.5,1)")  # fmt: skip
    parser.add_argument("--scaling-seq-lens", type=_typed(list[PositiveInt]), default=[20, 50],
                        help="lengths timed at the smallest of those (default 20,50)")  # fmt: skip
    parser.add_argument("--startup", action="store_true",
                        help="also time start-up to the first step, cold and warm")  # fmt: skip
    parser.add_argument("--startup-runs", type=positive_int, default=5,
                        help="warm start-ups of each run (median; default 5)")  # fmt: skip
    parser.add_argument("--parity", action="store_true",
                        help="also train EEA on the built-in corpus in fp32 and bf16")  # fmt: skip
    parser.add_argument("--parity-seed", type=_typed(Seed), default=0)
    parser.add_argument("--text-dim", type=positive_int, default=300,
                        help="text feature and emotion vector size of the random data (default "
                        "300, the paper's GloVe; 50 is the built-in corpus's)")  # fmt: skip
    parser.add_argument("--precision-grid", action="store_true",
                        help="also fp32 against bf16 side by side in one process per model, "
                        "text size and batch size (training and evaluation samples/s)")  # fmt: skip
    parser.add_argument("--grid-text-dims", type=_typed(list[PositiveInt]), default=[50, 300],
                        help="text sizes of --precision-grid (default 50,300)")  # fmt: skip
    parser.add_argument("--grid-batch-sizes", type=_typed(list[PositiveInt]), default=[64, 256],
                        help="batch sizes of --precision-grid (default 64,256)")  # fmt: skip
    parser.add_argument("--grid-pairs", type=positive_int, default=5,
                        help="fp32/bf16 pairs per grid point (median; default 5)")  # fmt: skip
    parser.add_argument("--grid-train-samples", type=positive_int, default=1280,
                        help="training samples per grid pass (default 1280)")  # fmt: skip
    parser.add_argument("--out", type=_json_file, default=Path("outputs/bench.json"),
                        help="JSON results (default outputs/bench.json)")  # fmt: skip
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _write(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    """Measure what the options ask for, each in a worker process; print the tables and
    write the JSON report (a worker writes only its own result)."""
    args = parse_args(argv)
    if args.worker:
        _worker(*args.worker)
        return None
    machine = describe(args.device)
    device = machine["device_type"]
    report: dict[str, Any] = {
        "command": "python -m memo.bench " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine,
        "settings": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if k != "worker"
        },  # fmt: skip
        "results": [],
    }
    main_specs, scaling_specs = _specs(args, device)
    done: dict[tuple, dict] = {}
    for spec in main_specs + scaling_specs:
        if _key(spec) in done:
            continue
        print(f"measuring {spec['model']} {spec['precision']} scale {spec['scale']:g} "
              f"steps {spec['seq_len']} ...", file=sys.stderr, flush=True)  # fmt: skip
        done[_key(spec)] = spawn("bench", spec, args.threads)
        report["results"] = [done[_key(s)] for s in main_specs if _key(s) in done]
        _write(args.out, report)  # what is measured so far, in case the run is cut short
    report["results"] = [done[_key(s)] for s in main_specs]
    speedup = {}
    for m in args.models:
        fp32, bf16 = (done.get((m, p, args.scale, args.seq_len)) for p in PRECISIONS)
        if fp32 and bf16:
            speedup[m] = fp32["epoch_s"] / bf16["epoch_s"]
    report["bf16_speedup"] = speedup
    report["bf16_speedup_side_by_side"] = {
        r["model"]: r["bf16_side_by_side"]["speedup_epoch"]
        for r in report["results"]
        if r.get("bf16_side_by_side")
    }
    if scaling_specs:
        report["scaling"] = scaling_table([done[_key(s)] for s in scaling_specs])
    if args.startup:
        print("measuring start-up ...", file=sys.stderr, flush=True)
        report["startup"] = measure_startup(args, device)
    if args.parity:
        print("measuring bf16 parity ...", file=sys.stderr, flush=True)
        report["parity"] = compare_precisions(args.parity_seed, device, args.threads)
    if args.precision_grid:
        print("measuring fp32 against bf16 side by side ...", file=sys.stderr, flush=True)
        report["precision_grid"] = precision_grid(args, device)
    report["targets"] = targets(report)
    _write(args.out, report)
    print(format_report(report))
    if report.get("precision_grid"):
        print("\nfp32 against bf16 (samples/s, medians of alternating pairs in one process)")
        print(format_precision_grid(report["precision_grid"]))
    print(f"\nJSON written to {args.out}", file=sys.stderr)
    return report
