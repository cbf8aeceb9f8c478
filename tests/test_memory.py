"""Freed heap pages go back to the OS (``etl.memory``), as the pipeline relies on between tables.

The bound is relative to this process, not a figure of one machine: of what malloc still holds after the
blocks are freed, ``release_freed`` must give at least half back (glibc gives back nearly all of it).  Where
there is nothing to measure (not glibc, or the allocator already returned the pages itself) the test skips
and says why.  The absolute figures of the city run are in bench/ (``etl.memory`` docstring).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from etl.memory import _malloc_trim, release_freed

MB = 1024 * 1024


def _rss() -> int:
    """Resident set size of this process in bytes (Linux)."""
    return int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) * 1024


def test_freed_blocks_spread_over_the_heap_are_given_back() -> None:
    if _malloc_trim() is None:
        pytest.skip("no glibc malloc_trim here: release_freed only releases Arrow's pool")
    release_freed()
    baseline = _rss()
    blocks = [bytes(600) + i.to_bytes(4, "little") for i in range(400_000)]  # > 512 bytes: glibc's malloc
    allocated = _rss() - baseline
    kept = blocks[::4096]  # survivors spread over the heap: it cannot shrink from its top alone
    del blocks
    held = _rss() - baseline  # freed by Python, still resident: what malloc keeps
    assert len(kept) == 98 and allocated > 200 * MB, allocated / MB  # the blocks really were ~250 MB
    if held < allocated // 4:
        pytest.skip(f"the allocator returned the pages itself ({held / MB:.0f} MB held): nothing to release")
    release_freed()
    after = _rss() - baseline
    assert after <= held // 2, (held / MB, after / MB)  # at least half of what malloc held is given back
