"""The benchmark report: the scaling table, the performance targets, Markdown tables."""

from __future__ import annotations

from typing import Any

# Targets of the performance issue, checked in the summary.
TARGET_OVERHEAD = 1.05
TARGET_BF16_SPEEDUP = 1.4
TARGET_PARITY_POINTS = 0.5
TARGET_STARTUP_S = 2.0  # warm, `python run.py` (default config) to its first step
TARGET_CUDA_EPOCH_S = 1.0


def scaling_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Epoch time against samples x steps, relative to the smallest configuration."""
    table = []
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = sorted(
            (r for r in rows if r["model"] == model), key=lambda r: (r["seq_len"], r["scale"])
        )
        work = [sum(r["sizes"].values()) * r["seq_len"] for r in mine]
        for r, w in zip(mine, work, strict=True):
            table.append(
                {
                    "model": model,
                    "precision": r["precision"],
                    "scale": r["scale"],
                    "seq_len": r["seq_len"],
                    "samples": sum(r["sizes"].values()),
                    "epoch_s": r["epoch_s"],
                    "work_ratio": w / work[0],
                    "time_ratio": r["epoch_s"] / mine[0]["epoch_s"],
                    # 1.0 = exactly linear in samples x steps; above 1: worse than linear
                    "linearity": (r["epoch_s"] / mine[0]["epoch_s"]) / (w / work[0]),
                }
            )
    return table


def targets(report: dict[str, Any]) -> dict[str, Any]:
    rows = {(r["model"], r["precision"]): r for r in report["results"] if r["scale"] >= 1}
    targets: dict[str, Any] = {}
    eea = rows.get(("eea", "fp32"))
    if eea and "overhead" in eea and report["machine"]["device_type"] == "cpu":
        for key in ("overhead", "overhead_cpu"):
            value = eea[key]
            targets[f"{key}_eea_fp32"] = {"value": value, "target": TARGET_OVERHEAD,
                                          "met": value <= TARGET_OVERHEAD}  # fmt: skip
    if eea and ("eea", "bf16") in rows:
        value = eea["epoch_s"] / rows[("eea", "bf16")]["epoch_s"]
        targets["bf16_speedup_eea"] = {"value": value, "target": TARGET_BF16_SPEEDUP,
                                       "met": value >= TARGET_BF16_SPEEDUP}  # fmt: skip
    side = report.get("bf16_speedup_side_by_side", {}).get("eea")
    if side is not None:
        targets["bf16_speedup_eea_side_by_side"] = {"value": side, "target": TARGET_BF16_SPEEDUP,
                                                    "met": side >= TARGET_BF16_SPEEDUP}  # fmt: skip
    if report.get("parity"):
        value = abs(report["parity"]["wa_avg_difference_points"])
        targets["bf16_wa_parity_points"] = {"value": value, "target": TARGET_PARITY_POINTS,
                                            "met": value <= TARGET_PARITY_POINTS}  # fmt: skip
    if report.get("startup"):
        value = report["startup"]["warm_s"]
        targets["startup_warm_s"] = {"value": value, "target": TARGET_STARTUP_S,
                                     "met": value <= TARGET_STARTUP_S}  # fmt: skip
    if eea and report["machine"]["device_type"] == "cuda":
        value = eea["epoch_s"]
        targets["cuda_epoch_eea_s"] = {"value": value, "target": TARGET_CUDA_EPOCH_S,
                                       "met": value < TARGET_CUDA_EPOCH_S}  # fmt: skip
    return targets


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _ratio(row: dict[str, Any]) -> str:
    if row.get("overhead") is None:
        return "-"
    low, high = row["overhead_quartiles"]
    return f"{row['overhead']:.3f} [{low:.3f}, {high:.3f}] {row['overhead_pooled']:.3f}"


def format_report(report: dict[str, Any]) -> str:
    """The report as Markdown tables."""
    machine = report["machine"]
    lines = [
        f"device: {machine['device']}; torch {machine['torch']}; threads "
        f"{report['settings']['threads']}; OMP_NUM_THREADS={machine['OMP_NUM_THREADS']}",
        "",
    ]
    if report["results"]:
        lines += [
            "| model | precision | scale | train samples/s | eval samples/s | epoch s "
            "| floor s | epoch/floor (median, [quartiles], pooled) | epoch/floor CPU time "
            "| peak RSS MB | peak GPU MB |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in report["results"]:
            lines.append(
                f"| {r['model']} | {r['precision']} | {r['scale']:g} | "
                f"{_fmt(r['train_samples_per_s'], 0)} | {_fmt(r['eval_samples_per_s'], 0)} | "
                f"{_fmt(r['epoch_s'])} | {_fmt(r.get('floor_s'))} | {_ratio(r)} | "
                f"{_fmt(r.get('overhead_cpu'), 3)} | "
                f"{_fmt(r['peak_rss_mb'], 0)} | {_fmt(r['peak_gpu_mb'], 0)} |"
            )
        lines += ["", "epoch phases (median s): " + "; ".join(
            f"{r['model']}/{r['precision']}: " + ", ".join(
                f"{k} {v:.3f}" for k, v in r["phases_s"].items() if k not in ("epoch", "epoch_cpu"))
            for r in report["results"])]  # fmt: skip
    if report.get("bf16_speedup"):
        lines += ["", "bf16 speed-up (fp32 epoch / bf16 epoch, separate processes): " + ", ".join(
            f"{m} {v:.2f}x" for m, v in report["bf16_speedup"].items())]  # fmt: skip
    if report.get("bf16_speedup_side_by_side"):
        lines += ["", "bf16 speed-up of the compute floor, fp32 and bf16 alternating in one "
                  "process: " + ", ".join(f"{m} {v:.2f}x" for m, v in
                                          report["bf16_speedup_side_by_side"].items())]  # fmt: skip
    if report.get("scaling"):
        lines += [
            "",
            "| model | scale | steps | samples | epoch s | work x | time x | time/work |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in report["scaling"]:
            lines.append(
                f"| {r['model']} | {r['scale']:g} | {r['seq_len']} | {r['samples']} | "
                f"{_fmt(r['epoch_s'])} | {_fmt(r['work_ratio'])} | {_fmt(r['time_ratio'])} | "
                f"{_fmt(r['linearity'])} |"
            )
    if report.get("startup"):
        s = report["startup"]
        f = s["files"]
        lines += ["", f"start-up to the end of the first training step, `{s['command']}` "
                  f"(median of {len(s['runs']['warm'])} warm): warm cache {s['warm_s']:.2f} s "
                  f"(CPU {s['warm_cpu_s']:.2f} s; importing torch {s['warm_torch_import_s']:.2f}"
                  f" s; the first step itself {s['warm_first_step_s']:.2f} s), cold "
                  f"{s['cold_s']:.2f} s; MOSEI-size files ({f['samples']} samples): warm "
                  f"{f['warm_s']:.2f} s, cold {f['cold_s']:.2f} s"]  # fmt: skip
    if report.get("parity"):
        p = report["parity"]
        lines += ["", f"bf16 parity (built-in corpus, seed {p['seed']}): test wa/avg fp32 "
                  f"{p['fp32']['test']['wa/avg']:.4f}, bf16 {p['bf16']['test']['wa/avg']:.4f} "
                  f"({p['wa_avg_difference_points']:+.2f} points); wall fp32 "
                  f"{p['fp32']['wall_s']:.1f} s, bf16 {p['bf16']['wall_s']:.1f} s"]  # fmt: skip
    if report.get("targets"):
        lines += ["", "targets: " + "; ".join(
            f"{k} {v['value']:.3f} (target {v['target']}: {'met' if v['met'] else 'MISSED'})"
            for k, v in report["targets"].items())]  # fmt: skip
    return "\n".join(lines)
