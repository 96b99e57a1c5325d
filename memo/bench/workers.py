"""Each measurement in its own process: `python -m memo.bench --worker KIND SPEC OUT`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def spawn(kind: str, spec: dict[str, Any], threads: int) -> dict[str, Any]:
    """Run one measurement in a fresh worker process with `threads` OpenMP threads; its
    JSON result."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "memo.bench", "--worker", kind, json.dumps(spec), str(out)]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"benchmark worker {kind} {spec} failed:\n{done.stderr[-3000:]}")
        return json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)
