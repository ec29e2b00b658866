"""rosettamt-translate run as a user runs it, for the CLI tests: the console script (or
``python -m`` where it is not installed) in a subprocess with its own HOME and one thread."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

TIMEOUT = 120


def command() -> list[str]:
    exe = shutil.which("rosettamt-translate")
    return [exe] if exe else [sys.executable, "-m", "rosettamt.cli.translate"]


def cli_env(tmp_path: Path) -> dict:
    """The environment of one test's commands: a fresh HOME, a dumb terminal, one thread."""
    home = tmp_path / "home"
    home.mkdir()
    return {**os.environ, "HOME": str(home), "TERM": "dumb", "OMP_NUM_THREADS": "1"}


def run_cli(args: list[str], stdin: bytes, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(command() + args, input=stdin, capture_output=True, cwd=cwd, env=env, timeout=TIMEOUT)
