"""Real ``deepyn serve`` processes on 127.0.0.1 for tests and benchmarks: free ports, bounded waits, cleanup."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalServer:
    """``python -m deepyn_gui.cli serve`` on a free 127.0.0.1 port, stopped by :meth:`stop`."""

    def __init__(self, *extra: str, threads: int = 1, log_dir: Path | None = None) -> None:
        self.port = free_port()
        self.scheme = "https" if "--ssl-certfile" in extra else "http"
        self.url = f"{self.scheme}://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        env.setdefault("OMP_NUM_THREADS", "1")
        self.log = (log_dir or Path(tempfile.gettempdir())) / f"deepyn-serve-{self.port}.log"
        self._log_fh = open(self.log, "wb")  # noqa: SIM115 - lives as long as the server
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deepyn_gui.cli", "serve", "--host", "127.0.0.1",
             "--http-port", str(self.port), "--threads", str(threads), *extra],
            cwd=ROOT, env=env, stdout=self._log_fh, stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 90.0) -> LocalServer:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"deepyn serve exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                ctx = ssl._create_unverified_context() if self.scheme == "https" else None
                with urllib.request.urlopen(f"{self.url}/v2/health/ready", timeout=2, context=ctx) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"deepyn serve on {self.url} not ready after {timeout:.0f} s")

    def kill(self) -> None:
        """Die at once, as a crashed server would (no graceful shutdown)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log_fh.close()
        if not os.environ.get("DEEPYN_KEEP_SERVE_LOGS"):  # failures quote the log before stopping
            self.log.unlink(missing_ok=True)


def start_servers(n: int, *extra: str, threads: int = 1) -> list[LocalServer]:
    """Start ``n`` servers in parallel and wait for all (stopping every one if any fails)."""
    servers = [LocalServer(*extra, threads=threads) for _ in range(n)]
    try:
        for s in servers:
            s.wait_ready()
    except BaseException:
        for s in servers:
            s.stop()
        raise
    return servers
