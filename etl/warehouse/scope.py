"""Unit hierarchy: a unit's scope is itself and every unit below it (rules.md, Access)."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd


def children_map(units: pd.DataFrame) -> dict[str, list[str]]:
    """parent_code -> child unit codes, from an ``org_units`` frame."""
    out: dict[str, list[str]] = {}
    for code, parent in zip(units["unit_code"], units["parent_code"], strict=True):
        if parent is not None and not (isinstance(parent, float) and pd.isna(parent)):
            out.setdefault(str(parent), []).append(str(code))
    return out


def scope_of(units: pd.DataFrame, unit_code: str) -> set[str]:
    """The codes of ``unit_code`` and all its descendants (cycle-safe)."""
    kids = children_map(units)
    seen: set[str] = set()
    stack = [unit_code]
    while stack:
        code = stack.pop()
        if code in seen:
            continue
        seen.add(code)
        stack.extend(kids.get(code, ()))
    return seen


def ancestors_map(units: pd.DataFrame) -> dict[str, list[str]]:
    """unit_code -> [itself, parent, grandparent, ...] (cycle-safe)."""
    parent = {
        str(c): (None if p is None or (isinstance(p, float) and pd.isna(p)) else str(p))
        for c, p in zip(units["unit_code"], units["parent_code"], strict=True)
    }
    out: dict[str, list[str]] = {}
    for code in parent:
        chain, cur = [], code
        while cur is not None and cur not in chain:
            chain.append(cur)
            cur = parent.get(cur)
        out[code] = chain
    return out


def scope_pairs(units: pd.DataFrame) -> pd.DataFrame:
    """Every (scope_unit, unit_code) pair where unit_code is in scope_unit's scope.

    Joining facts on ``unit_code`` with this frame and grouping by
    ``scope_unit`` aggregates each unit over its whole scope in one pass.
    """
    rows: list[tuple[str, str]] = []
    for code, chain in ancestors_map(units).items():
        rows.extend((anc, code) for anc in chain)
    return pd.DataFrame(rows, columns=["scope_unit", "unit_code"])


def in_scope(codes: Iterable[str], scope: set[str]) -> list[bool]:
    return [c in scope for c in codes]
