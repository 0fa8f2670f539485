"""The one retry policy of the client: what is retried, and how long to wait first.

Transient failures are retried (``ImageSearchError.retryable``: throttling, 5xx, HTTP-200
rate-limit failures, timeouts, connection errors); input errors never are. The wait is
exponential backoff with jitter, or the service's ``Retry-After`` when it sends one.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from time import time

from langchain_qwen_imagesearch.client._errors import APIError

# A stable name for users to configure, whatever module the retry loop lives in.
logger = logging.getLogger("langchain_qwen_imagesearch.client")

MAX_BACKOFF_SECONDS = 30.0
# A longer Retry-After is the caller's call: the error is raised with it instead.
MAX_RETRY_AFTER_SECONDS = 60.0


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int
    backoff: float

    def delay(self, error: APIError, retries_done: int) -> float | None:
        """Seconds to wait before retrying after ``error``, or ``None`` not to retry."""
        if retries_done >= self.max_retries or not error.retryable:
            return None
        if error.retry_after is not None:
            return error.retry_after if error.retry_after <= MAX_RETRY_AFTER_SECONDS else None
        ceiling = min(MAX_BACKOFF_SECONDS, self.backoff * 2**retries_done)
        # "Equal jitter": at least half the backoff, so retries never bunch up at zero.
        return random.uniform(ceiling / 2, ceiling)

    def attempts(self) -> RetryAttempts:
        return RetryAttempts(self)


class RetryAttempts:
    """The retries of one call; the sync and async loops differ only in how they sleep."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._retries = 0

    def wait_before_retry(self, error: APIError) -> float:
        """Seconds to sleep before the next attempt; raises ``error`` when it is final."""
        delay = self._policy.delay(error, self._retries)
        if delay is None:
            raise error
        self._retries += 1
        logger.info(
            "Image search failed (%s); retry %d of %d in %.2f s",
            error,
            self._retries,
            self._policy.max_retries,
            delay,
        )
        return delay


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        # "nan" and "inf" parse as floats but say nothing usable.
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time())
    except (TypeError, ValueError):
        return None
