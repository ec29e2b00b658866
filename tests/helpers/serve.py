"""rosettamt-serve for the tests: a real server process on an ephemeral 127.0.0.1 port (its own
log line says which), its log read in the background, stopped with a signal."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import List, Optional

READY = re.compile(r"ready: .* at (http://127\.0\.0\.1:\d+)/")
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)/")


class ServerProcess:
    """``python -m rosettamt.serve`` with the given overrides; ``url`` once it is ready."""

    def __init__(self, checkpoint: Optional[Path], *overrides: str) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_DATASETS_OFFLINE": "1"}
        args = [f"checkpoint={checkpoint}"] if checkpoint is not None else []  # None: the overrides say
        args += ["device=cpu", "serve.port=0", "serve.threads=1", *overrides]
        self.proc = subprocess.Popen([sys.executable, "-m", "rosettamt.serve", *args], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: List[str] = []
        self.url: Optional[str] = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:  # type: ignore[union-attr]
            self.lines.append(line.rstrip("\n"))

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: re.Pattern, timeout: float = 120.0) -> str:
        """The first group of the first log line matching ``pattern``; fails if the process ends first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                match = pattern.search(line)
                if match:
                    return match.group(1)
            if self.proc.poll() is not None:
                self._reader.join(5)
                raise AssertionError(f"rosettamt-serve exited with {self.proc.returncode}:\n{self.log}")
            time.sleep(0.05)
        raise AssertionError(f"rosettamt-serve: no {pattern.pattern!r} after {timeout} s:\n{self.log}")

    def wait_ready(self, timeout: float = 120.0) -> str:
        self.url = self.wait_for(READY, timeout)
        return self.url

    def stop(self, sig: Optional[int] = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Signal the server (``sig=None``: it was signalled already, so only wait) and wait for it;
        its exit status."""
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._reader.join(5)
        return code


def start_server(checkpoint: Optional[Path], *overrides: str) -> ServerProcess:
    server = ServerProcess(checkpoint, *overrides)
    server.wait_ready()
    return server
