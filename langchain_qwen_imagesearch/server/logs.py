"""The server's logs go to stderr through a bounded queue and a thread of their own.

uvicorn writes its logs, the access log among them, from the event loop: with its output
captured but not read, a full pipe once froze the whole server. Here the event loop only
puts records in a queue (dropping them, counted, when the queue is full) and a listener
thread writes them, so a stuck reader can delay the log but never the server.
"""

from __future__ import annotations

import logging
import queue
import sys
from logging.handlers import QueueHandler, QueueListener

QUEUE_RECORDS = 10_000
SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "langchain_qwen_imagesearch")


class _DroppingQueueHandler(QueueHandler):
    """Never blocks: a record that finds the queue full is dropped and counted."""

    def __init__(self, records: queue.Queue[logging.LogRecord]) -> None:
        super().__init__(records)
        self.dropped = 0

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1


def log_without_blocking(*, access_log: bool) -> QueueListener:
    """Send the server's logs (requests too, with ``access_log``) to stderr; stop the
    returned listener at shutdown to flush what is queued."""
    records: queue.Queue[logging.LogRecord] = queue.Queue(QUEUE_RECORDS)
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    listener = QueueListener(records, stderr)
    handler = _DroppingQueueHandler(records)
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.propagate = False
        logger.setLevel(logging.INFO)
    logging.getLogger("uvicorn.access").disabled = not access_log
    listener.start()
    return listener
