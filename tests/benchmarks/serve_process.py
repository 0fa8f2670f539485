"""``qwen-imagesearch serve`` in its own process on a loopback port, for the benchmarks: a
server in the benchmark's own process would share its GIL and slow both, as a remote
upstream never does."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

KEY = "bench-key"
STARTUP_SECONDS = 60.0


@dataclass(frozen=True)
class RunningServer:
    root_url: str
    base_url: str
    """The OpenAI SDK ``base_url`` (``.../compatible-mode/v1``)."""
    pid: int


def rss_mb(pid: int) -> float:
    """The resident memory of process ``pid``, in MB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@contextlib.contextmanager
def server_process(
    *,
    catalog_dir: Path | None = None,
    search_delay: float = 0.0,
    python: str = sys.executable,
    log: IO[bytes] | int = subprocess.DEVNULL,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Iterator[RunningServer]:
    """The server (on the demo photos without ``catalog_dir``), stopped on leaving; its
    output goes to ``log`` (``subprocess.PIPE``: a pipe nobody reads). ``env`` and ``cwd``:
    the server's environment and folder (default: this process's)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [python, "-m", "langchain_qwen_imagesearch.cli", "serve", "--api-key", KEY]
    command += ["--port", str(port)]
    if catalog_dir is not None:
        command += ["--catalog", str(catalog_dir)]
    if search_delay:
        command += ["--search-delay", str(search_delay)]
    command += extra_args
    process = subprocess.Popen(command, stdout=log, stderr=log, env=env, cwd=cwd)
    root = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                if httpx.get(root + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the benchmark server did not start") from None
                time.sleep(0.1)
        yield RunningServer(root, root + "/compatible-mode/v1", process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)
