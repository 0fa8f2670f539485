"""A server whose output nobody reads keeps serving: logs never block it."""

from __future__ import annotations

import subprocess
import time

import httpx
import pytest

from tests.benchmarks.serve_process import server_process

REQUESTS = 3000
BOUND_SECONDS = 60.0


@pytest.mark.slow
def test_serve_with_an_unread_pipe_and_access_log_keeps_answering() -> None:
    # The pipe's buffer (64 KB) holds a few hundred log lines; the requests are far more.
    process_log = subprocess.PIPE
    with server_process(log=process_log, extra_args=["--access-log"]) as server:
        started = time.monotonic()
        with httpx.Client(base_url=server.root_url, timeout=5) as http:
            for number in range(REQUESTS):
                assert http.get("/health").status_code == 200, number
                assert time.monotonic() - started < BOUND_SECONDS
