"""Stop sequences, honoured on this side: the Responses API takes none, so the answer is cut
before the first stop sequence it holds (the tokens are billed as the service produced them).
"""

from __future__ import annotations

from collections.abc import Sequence


class StopCutter:
    """Cuts a text, whole or as it streams, before the first of ``stop``."""

    def __init__(self, stop: Sequence[str] | None) -> None:
        self._stop = [sequence for sequence in stop or () if sequence]
        self._held = ""
        self._stopped = False

    def cut(self, text: str) -> str:
        """``text`` up to the first stop sequence."""
        ends = [text.find(sequence) for sequence in self._stop]
        found = [end for end in ends if end >= 0]
        return text[: min(found)] if found else text

    def feed(self, delta: str) -> str:
        """What of the stream can be shown now: text that no stop sequence can still start in
        is let through; the rest is held until the next delta tells."""
        if self._stopped:
            return ""
        text = self._held + delta
        cut = self.cut(text)
        if len(cut) < len(text):
            self._stopped, self._held = True, ""
            return cut
        keep = self._longest_partial_stop(text)
        self._held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep]

    def rest(self) -> str:
        """What was held at the end of the stream (no stop sequence followed)."""
        rest, self._held = ("" if self._stopped else self._held), ""
        return rest

    def _longest_partial_stop(self, text: str) -> int:
        """Length of the longest end of ``text`` that begins some stop sequence."""
        return max(
            (
                length
                for sequence in self._stop
                for length in range(1, len(sequence))
                if text.endswith(sequence[:length])
            ),
            default=0,
        )
