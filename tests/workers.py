"""Real Celery worker processes for tests and benchmarks: the environment they inherit, and a handle that
starts, kills and restarts one."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def worker_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment, TensorFlow quiet and output unbuffered, with ``extra`` on top."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    env.update(extra or {})
    return env


class CeleryWorker:
    """A real ``celery worker`` process; tests can kill and restart it."""

    def __init__(self, *, env: dict[str, str], queues: str, log_path: Path) -> None:
        self.env, self.queues, self.log_path = env, queues, log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "inclinet_site", "worker", "-Q", self.queues,
             "--concurrency", "1", "--pool", "prefork", "-n", f"test-{os.getpid()}-{time.time_ns()}@%h",
             "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
            cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )

    def stop(self, *, sig_kill: bool = False) -> None:
        if self.process and self.process.poll() is None:
            (self.process.kill if sig_kill else self.process.terminate)()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
