"""Freed heap pages go back to the OS (``etl.memory``), as the pipeline relies on between tables."""

from __future__ import annotations

from pathlib import Path

from etl.memory import release_freed


def _rss_mb() -> int:
    return int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) // 1024


def test_freed_blocks_spread_over_the_heap_are_given_back() -> None:
    blocks = [bytes(600) + i.to_bytes(4, "little") for i in range(400_000)]  # > 512 bytes: glibc's malloc
    kept = blocks[::4096]  # survivors spread over the heap: it cannot shrink from its top alone
    del blocks
    before = _rss_mb()
    release_freed()
    after = _rss_mb()
    assert len(kept) == 98
    assert before - after > 150, (before, after)  # ~250 MB freed but held by malloc before the call
