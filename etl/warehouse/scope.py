"""Unit hierarchy and unit scope: a unit's scope is itself and every unit below it (rules.md, Access).

The one scope module: the ETL's per-scope aggregation (``scope_pairs``), the
dashboard's query layer (``covered_units``, ``scope_root``, ``user_scope``)
and the workbook (``check_unit``, ``roots``, ``scope_of``) all use it.  A
user's scope is a tuple of unit codes, or None for the whole city; anything
asked for outside it raises ``ScopeError``.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from etl.errors import EtlError

Scope = tuple[str, ...] | None


class ScopeError(EtlError, PermissionError):
    """A unit or object outside the user's scope was asked for."""


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


def roots(units: pd.DataFrame) -> list[str]:
    """The top units of an ``org_units`` frame (no parent, or a parent outside the frame), in frame order."""
    if units.empty:
        return []
    top = units[units["parent_code"].isna() | ~units["parent_code"].isin(units["unit_code"])]
    return [str(c) for c in top["unit_code"]]


def user_scope(units: pd.DataFrame, unit_code: str | None) -> tuple[str, ...]:
    """The scope of a unit administrator of ``unit_code``: sorted codes, empty for a unit not in the tree."""
    known = set(units["unit_code"].astype(str)) if not units.empty else set()
    return tuple(sorted(scope_of(units, unit_code))) if unit_code in known else ()


def check_unit(scope: Iterable[str] | None, unit_code: str | None, message: str = "无权查看该单位的数据") -> None:
    """ScopeError(``message``) unless ``unit_code`` lies in ``scope`` (None = the whole city: all allowed).

    ``unit_code`` None stands for the whole city here, which only the whole-city scope holds.
    """
    if scope is not None and (unit_code is None or unit_code not in set(scope)):
        raise ScopeError(message)


def covered_units(units: pd.DataFrame, scope: Scope, unit: str | None) -> Scope:
    """The units a request about ``unit`` covers for a user of ``scope``: its subtree within the scope.

    ``unit`` None means the user's whole scope (None again for the whole city: no unit filter).  A unit
    outside the scope raises ScopeError.
    """
    if unit is None:
        return scope
    check_unit(scope, unit)
    sub = scope_of(units, unit)
    if scope is not None:
        sub &= set(scope)
    return tuple(sorted(sub))


def scope_root(units: pd.DataFrame, scope: Scope) -> str | None:
    """The top unit of a scope (the city's top unit for None); None for an empty tree or scope."""
    top = roots(units if scope is None or units.empty else units[units["unit_code"].isin(scope)])
    return top[0] if top else None
