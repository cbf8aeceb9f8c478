"""A one-line progress display on stderr (table, rows, rows/s); silent unless stderr is a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, enabled: bool | None = None, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.label = ""
        self.total = 0
        self.done = 0
        self.t0 = time.perf_counter()
        self._last = 0.0

    def _write(self, text: str, end: str = "") -> None:
        if self.enabled:
            self.stream.write("\r\033[K" + text + end)
            self.stream.flush()

    def stage(self, label: str) -> None:
        """A step without a row count (reading, validating)."""
        self.label, self.total, self.done, self.t0 = label, 0, 0, time.perf_counter()
        self._write(f"{label}…")

    def start(self, label: str, total: int) -> None:
        self.label, self.total, self.done, self.t0 = label, total, 0, time.perf_counter()
        self._write(f"{label}：0/{total:,} 行")

    def advance(self, rows: int) -> None:
        self.done += rows
        now = time.perf_counter()
        if now - self._last < 0.2 and self.done < self.total:
            return
        self._last = now
        rate = self.done / max(now - self.t0, 1e-6)
        self._write(f"{self.label}：{self.done:,}/{self.total:,} 行（{rate:,.0f} 行/秒）")

    def finish(self, text: str) -> None:
        self._write(text, "\n")
