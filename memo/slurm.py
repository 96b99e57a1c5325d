"""SLURM sweeps (`hydra/launcher=slurm`, Hydra's submitit launcher): before submitting, refuse a
request no node can run, and follow the jobs with squeue where the cluster keeps no accounting."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig
from submitit.slurm.slurm import SlurmInfoWatcher, SlurmJob

log = logging.getLogger(__name__)

SINFO_FORMAT = "%P|%N|%c|%m|%G"  # partition (default marked *), node, CPUs, memory MB, GRES
LOST = {"CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL"}


@dataclass(frozen=True)
class Node:
    """What one node offers a job, as sinfo reports it."""

    name: str
    cpus: int
    mem_mb: int
    gpus: int


def _int(text: str) -> int:
    """The leading number of a sinfo field ('24105', '64+'), 0 if none."""
    match = re.match(r"\d+", text.strip())
    return int(match.group()) if match else 0


def gpu_count(gres: str) -> int:
    """GPUs in a sinfo GRES field such as `gpu:a100:4(S:0-1),shard:8`; 0 for `(null)`."""
    return sum(int(n) for n in re.findall(r"(?:^|,)gpu(?::[^:,(]+)?:(\d+)", gres))


def read_partitions(listing: str) -> dict[str, list[Node]]:
    """Nodes per partition from `sinfo --noheader --Node --format=SINFO_FORMAT`; the default
    partition keeps sinfo's `*` after its name."""
    partitions: dict[str, list[Node]] = {}
    for line in listing.splitlines():
        if line.count("|") == 4:
            partition, name, cpus, mem, gres = line.split("|")
            node = Node(name, _int(cpus), _int(mem), gpu_count(gres))
            partitions.setdefault(partition, []).append(node)
    return partitions


def request_problem(params: Mapping[str, Any], partitions: dict[str, list[Node]]) -> str | None:
    """Why no node of the requested partition could ever run one job of the launcher's request
    (`params`: partition, cpus_per_task, tasks_per_node, mem_gb, gpus_per_node), or None."""
    by_name = {name.rstrip("*"): nodes for name, nodes in partitions.items()}
    wanted = params.get("partition")
    if wanted:
        names = str(wanted).split(",")
        unknown = [name for name in names if name not in by_name]
        if unknown:
            return (f"hydra.launcher.partition={wanted}: no SLURM partition {', '.join(unknown)} "
                    f"(partitions: {', '.join(sorted(by_name))})")  # fmt: skip
    else:
        names = [name.rstrip("*") for name in partitions if name.endswith("*")]  # the default
    nodes = [node for name in names for node in by_name[name]]
    cpus = (params.get("cpus_per_task") or 1) * (params.get("tasks_per_node") or 1)
    mem_mb = (params.get("mem_gb") or 0) * 1024
    gpus = params.get("gpus_per_node") or 0
    if not nodes or any(n.cpus >= cpus and n.mem_mb >= mem_mb and n.gpus >= gpus for n in nodes):
        return None  # no partition at all: sbatch says so itself
    most_cpus = max(n.cpus for n in nodes)
    most_mem = max(n.mem_mb for n in nodes)
    most_gpus = max(n.gpus for n in nodes)
    reasons = []
    largest = "but its largest node has"
    if cpus > most_cpus:
        reasons.append(f"hydra.launcher.cpus_per_task={cpus}, {largest} {most_cpus} CPUs")
    if mem_mb > most_mem:
        reasons.append(
            f"hydra.launcher.mem_gb={mem_mb // 1024}, {largest} {most_mem / 1024:.1f} GB"
        )
    if gpus > most_gpus:
        reasons.append(f"hydra.launcher.gpus_per_node={gpus}, {largest} {most_gpus} GPUs")
    detail = "; ".join(reasons) or "no single node has the CPUs, memory and GPUs asked for"
    return f"no node of SLURM partition {','.join(names)} can run these jobs: {detail}"


def _slurm(command: list[str]) -> str | None:
    """The output of a SLURM command, or None where it is missing or fails."""
    try:
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None


def accounting_enabled() -> bool:
    """Whether the cluster keeps accounting, i.e. whether `sacct` can answer."""
    config = _slurm(["scontrol", "show", "config"]) or ""
    return not re.search(r"^AccountingStorageType\s*=\s*accounting_storage/none", config, re.M)


class QueueWatcher(SlurmInfoWatcher):
    """Job states from `squeue`, for clusters without accounting (where submitit's `sacct` fails
    on every poll and a cancelled job would be waited for forever). A job that has left the queue
    has ended. The jobs' states, and pending jobs' reasons, are logged when they change."""

    def __init__(self, sweep_dir: str, delay_s: int = 30) -> None:
        super().__init__(delay_s=delay_s)
        self.sweep_dir = sweep_dir
        self._summary = ""
        self._lost: set[str] = set()

    def _make_command(self) -> list[str] | None:
        if not self._registered - self._finished:
            return None
        return ["squeue", "--noheader", "--array", "--states=all", f"--user={os.getuid()}",
                "--format=%i|%T|%N|%r"]  # fmt: skip

    def read_info(self, string: bytes | str) -> dict[str, dict[str, str]]:
        text = string.decode() if isinstance(string, bytes) else string
        info: dict[str, dict[str, str]] = {}
        fields = ("JobID", "State", "NodeList", "Reason")
        for line in text.splitlines():
            if line.count("|") == 3:
                job = dict(zip(fields, line.split("|"), strict=True))
                info[job["JobID"]] = job
        for job_id in self._registered - self._finished - set(info):
            if not any(task.startswith(f"{job_id}_") for task in info):  # not an array's own id
                info[job_id] = {"JobID": job_id, "State": "ENDED", "Reason": ""}  # purged
        self._log_states({job_id: info[job_id] for job_id in self._registered if job_id in info})
        return info

    def _log_states(self, jobs: dict[str, dict[str, str]]) -> None:
        """Log, when it changes, how many of the sweep's jobs are in each state, and which ones
        SLURM ended early (cancelled, failed, timed out...)."""
        counts = Counter(
            f"pending ({job['Reason']})"
            if job["State"] == "PENDING" and job["Reason"] != "None"
            else job["State"].lower()
            for job in jobs.values()
        )
        summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        if summary == self._summary:
            return
        self._summary = summary
        log.info("SLURM jobs: %s", summary)
        lost = {job_id for job_id, job in jobs.items() if job["State"] in LOST} - self._lost
        if lost:
            self._lost |= lost
            ended = ", ".join(
                f"{job_id} {jobs[job_id]['State'].lower()}" for job_id in sorted(lost)
            )
            log.warning("SLURM ended jobs early (%s): to finish a job left without results, run "
                        "the same command with hydra.sweep.dir=%s; finished jobs are not run "
                        "again", ended, self.sweep_dir)  # fmt: skip


def prepare_sweep(config: DictConfig) -> None:
    """Before a SLURM sweep (`config`: the whole config) is submitted: exit with a message where
    no node could run its jobs; follow them with squeue where the cluster has no accounting."""
    listing = _slurm(["sinfo", "--noheader", "--Node", f"--format={SINFO_FORMAT}"])
    launcher = config.hydra.launcher
    problem = request_problem(launcher, read_partitions(listing)) if listing else None
    if problem:
        print(f"error: {problem}. The jobs would pend forever: ask for less, or for another "
              "partition (hydra.launcher.partition=...)", file=sys.stderr)  # fmt: skip
        sys.exit(2)
    if not accounting_enabled():
        SlurmJob.watcher = QueueWatcher(config.hydra.sweep.dir)  # submitit's jobs share it
