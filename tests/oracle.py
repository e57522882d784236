"""MLflow 3.18 as the judge: run snippets in the oracle's own interpreter and compare.

MLflow pins many packages, so it lives in a venv of its own (`.venv-oracle`, made by `.ci/run`
through the shared installer, or any interpreter named by ASYNCTRACK_MLFLOW_PYTHON). Tests talk
to it through JSON over a subprocess and skip cleanly where it is absent.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def oracle_python() -> str | None:
    """The interpreter that has mlflow 3.18 installed, or None."""
    candidates = [os.environ.get("ASYNCTRACK_MLFLOW_PYTHON"), str(ROOT / ".venv-oracle/bin/python")]
    for cand in candidates:
        if not cand or not Path(cand).exists():
            continue
        probe = subprocess.run(
            [cand, "-c", "import mlflow; print(mlflow.__version__)"],
            capture_output=True,
            text=True,
            env=_env(),
        )
        if probe.returncode == 0 and probe.stdout.strip().startswith("3.18"):
            return cand
    return None


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["DO_NOT_TRACK"] = "true"
    env["PYTHONWARNINGS"] = "ignore"
    env["GIT_PYTHON_REFRESH"] = "quiet"
    return env


needs_mlflow = pytest.mark.skipif(
    "oracle_python() is None", reason="MLflow 3.18 oracle not installed (.venv-oracle)"
)

_PRELUDE = """
import json, sys, math
ARGS = json.loads(sys.stdin.read())
def _err(e):
    return {"error_code": getattr(e, "error_code", type(e).__name__), "message": str(getattr(e, "message", e))}
def _out(obj):
    sys.stdout.write("\\n@@RESULT@@" + json.dumps(obj, default=str))
"""


def run(script: str, cwd: str | os.PathLike | None = None, timeout: float = 300, **args: Any) -> Any:
    """Run `script` under the oracle; it sees ARGS (the keyword args) and calls _out(result)."""
    py = oracle_python()
    if py is None:
        pytest.skip("MLflow oracle not installed")
    code = _PRELUDE + textwrap.dedent(script)
    proc = subprocess.run(
        [py, "-c", code],
        input=json.dumps(args),
        capture_output=True,
        text=True,
        cwd=cwd,
        env=_env(),
        timeout=timeout,
    )
    if proc.returncode != 0 or "@@RESULT@@" not in proc.stdout:
        raise AssertionError(f"oracle failed (rc={proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.rsplit("@@RESULT@@", 1)[1])


def error_of(fn, *a, **kw) -> dict | None:
    """asynctrack's side of an error comparison, in the shape the prelude's _err gives."""
    try:
        fn(*a, **kw)
    except Exception as e:  # noqa: BLE001 - the point is to compare whatever is raised
        return {"error_code": getattr(e, "error_code", type(e).__name__), "message": str(getattr(e, "message", e))}
    return None


__all__ = ["needs_mlflow", "oracle_python", "run", "error_of", "sys"]
