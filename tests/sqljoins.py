"""A checker of SQL joins against the distribution key (issue 18; tests/test_distribution.py).

``join_violations(sql, dialect)`` parses ``sql`` with sqlglot and lists every join of two *distributed*
tables (etl.warehouse.distribution.DISTRIBUTED) whose condition lacks an equality of their
``county_code`` columns.  On a distributed warehouse (Citus) such a join can only be planned node-local
when both sides are co-located, which is what that equality says.

What counts as a join of two distributed sides:

- an explicit JOIN (any side: INNER, LEFT …) or a comma join, in a SELECT, an UPDATE … FROM or a
  DELETE … USING, whose right side is distributed while a distributed source precedes it: its ON (for
  an inner or comma join, ON and WHERE; or USING) must equate the right side's key with the key of one
  of the distributed sources before it;
- a correlated subquery (EXISTS, IN, a scalar subquery …) that reads a distributed source and refers
  to columns of a distributed source of an enclosing query: its WHERE (or its joins' ON) must equate the
  key of that outer source with the key of one of its own distributed sources.

A source is distributed when it is a base table named in DISTRIBUTED, or a derived table or CTE that
reads one; its key columns are ``county_code`` for a table and, for a derived table, the output
columns that select a ``county_code`` column (``county_code AS c``).  Reference tables, local tables,
temporary tables (``etl_…``) and anything else are not distributed, so their joins are free.
Uncorrelated ``IN (SELECT …)`` subqueries are fine: Citus plans them on their own.

Statements sqlglot cannot parse (or parses as an opaque command) are reported as ``unparsed: …`` only
when they are a query or a DML statement that names a distributed table; DDL, PRAGMA, SAVEPOINT … are
skipped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp

from etl.warehouse.distribution import DISTRIBUTED, KEY

logging.getLogger("sqlglot").setLevel(logging.ERROR)  # "falling back to parsing as a Command" for DDL

QUERY = (exp.Select, exp.SetOperation)


@dataclass
class Source:
    """One FROM/JOIN source of a query, seen through its alias."""

    alias: str
    label: str  # table name, or "(subquery)"/the CTE's name
    distributed: bool
    keys: frozenset[str] = field(default_factory=frozenset)  # its columns that carry the county key
    tables: frozenset[str] = field(default_factory=frozenset)  # the distributed tables it reads


@dataclass(frozen=True)
class Violation:
    """A join of distributed sides without the key: ``pairs``, the (table, table) it joins."""

    message: str
    pairs: frozenset[frozenset[str]]

    def __str__(self) -> str:
        return self.message


@dataclass
class Stats:
    """What a checker run saw (so that a test cannot pass on SQL it did not look at)."""

    statements: int = 0
    distributed_joins: int = 0  # joins of two distributed sides that were checked
    correlated: int = 0  # correlated subqueries between distributed sides that were checked
    unparsed: int = 0


def join_violations(
    sql: str, dialect: str, distributed: Collection[str] = tuple(DISTRIBUTED), stats: Stats | None = None
) -> list[str]:
    """The joins of ``sql`` between distributed sides that do not join on the distribution key."""
    return [v.message for v in find_violations(sql, dialect, distributed, stats)]


def find_violations(
    sql: str, dialect: str, distributed: Collection[str] = tuple(DISTRIBUTED), stats: Stats | None = None
) -> list[Violation]:
    """``join_violations`` with the pairs of tables each one joins (``stats``: counts what was checked)."""
    read = "postgres" if dialect in ("postgresql", "postgres") else dialect
    checker = _Checker(frozenset(t.lower() for t in distributed), stats if stats is not None else Stats(), read)
    checker.stats.statements += 1
    try:
        statements = [s for s in sqlglot.parse(sql, read=read) if s is not None]
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError):
        return checker.unparsed(sql)
    out: list[Violation] = []
    for statement in statements:
        if isinstance(statement, exp.Command):
            out += checker.unparsed(sql if len(statements) == 1 else statement.sql(dialect=read))
        else:
            out += checker.statement(statement)
    return out


def _excerpt(sql: str, width: int = 300) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


class _Checker:
    def __init__(self, distributed: frozenset[str], stats: Stats, dialect: str) -> None:
        self.distributed = distributed
        self.stats = stats
        self.dialect = dialect
        self.out: list[Violation] = []

    def text(self, node: exp.Expression) -> str:
        try:
            return _excerpt(node.sql(dialect=self.dialect))
        except Exception:  # noqa: BLE001 - an excerpt only
            return _excerpt(node.sql())

    # ---- unparsed -------------------------------------------------------------------------------
    def unparsed(self, sql: str) -> list[Violation]:
        words = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", sql)
        if not words:
            return []
        first = words[0].upper()
        lowered = {w.lower() for w in words}
        dml = first in ("SELECT", "WITH", "UPDATE", "DELETE") or (first == "INSERT" and "select" in lowered)
        if dml and lowered & self.distributed:
            self.stats.unparsed += 1
            return [Violation(f"unparsed: {_excerpt(sql)}", frozenset())]
        return []

    # ---- statements -----------------------------------------------------------------------------
    def statement(self, node: exp.Expression) -> list[Violation]:
        self.out = []
        self.visit(node, [], {})
        return self.out

    def visit(self, node: exp.Expression, outer: list[dict[str, Source]], ctes: dict[str, Source]) -> None:
        """Check every query inside ``node`` (``outer``: the sources of the enclosing queries, innermost
        first; ``ctes``: the CTEs in sight)."""
        if isinstance(node, exp.Select):
            self.select(node, outer, ctes)
        elif isinstance(node, exp.SetOperation):
            ctes = self.with_(node, outer, ctes)
            self.visit(node.left, outer, ctes)
            self.visit(node.right, outer, ctes)
        elif isinstance(node, exp.Subquery):
            ctes = self.with_(node, outer, ctes)
            self.visit(node.this, outer, ctes)
        elif isinstance(node, (exp.Update, exp.Delete)):
            self.dml(node, outer, ctes)
        else:  # INSERT … SELECT, CREATE VIEW … AS SELECT, anything holding a query
            ctes = self.with_(node, outer, ctes)
            for child in _children(node):
                self.visit(child, outer, ctes)

    def with_(self, node: exp.Expression, outer: list[dict[str, Source]], ctes: dict[str, Source]) -> dict:
        """The CTEs of ``node``'s WITH added to ``ctes`` (each body checked)."""
        with_ = node.args.get("with_") or node.args.get("with")
        if not isinstance(with_, exp.With):
            return ctes
        ctes = dict(ctes)
        for cte in with_.expressions:
            self.visit(cte.this, outer, ctes)
            name = cte.alias_or_name.lower()
            ctes[name] = self.derived(cte.this, name, name, ctes)
        return ctes

    # ---- sources ----------------------------------------------------------------------------------
    def source(self, node: exp.Expression, ctes: dict[str, Source], outer: list[dict[str, Source]]) -> Source:
        if isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier):
            name = node.name.lower()
            alias = node.alias_or_name.lower()
            if not node.args.get("db") and name in ctes:
                cte = ctes[name]
                return Source(alias, cte.label, cte.distributed, cte.keys, cte.tables)
            if name in self.distributed:
                return Source(alias, name, True, frozenset({KEY}), frozenset({name}))
            return Source(alias, name, False)
        if isinstance(node, exp.Subquery):
            self.visit(node, outer, ctes)  # a derived table: checked on its own (LATERAL is not used here)
            alias = node.alias_or_name.lower() or "(subquery)"
            return self.derived(node.this, alias, f"(subquery {alias})", ctes)
        alias = node.alias_or_name.lower() if hasattr(node, "alias_or_name") else ""
        return Source(alias, node.sql()[:40], False)

    def derived(self, query: exp.Expression, alias: str, label: str, ctes: dict[str, Source]) -> Source:
        """A derived table or CTE: distributed when it reads a distributed table anywhere; its key columns
        are the outputs that select a key column."""
        reads = {t.name.lower() for t in query.find_all(exp.Table)}
        tables = reads & self.distributed
        for name in reads & set(ctes):
            tables |= ctes[name].tables
        first = query
        while isinstance(first, (exp.SetOperation, exp.Subquery)):
            first = first.left if isinstance(first, exp.SetOperation) else first.this
        keys: set[str] = set()
        if isinstance(first, exp.Select):
            for projection in first.expressions:
                inner = projection.this if isinstance(projection, exp.Alias) else projection
                if isinstance(inner, exp.Star) or (isinstance(inner, exp.Column) and isinstance(inner.this, exp.Star)):
                    keys.add(KEY)
                elif isinstance(inner, exp.Column) and inner.name.lower() == KEY:
                    keys.add(projection.alias_or_name.lower())
        return Source(alias, label, bool(tables), frozenset(keys), frozenset(tables))

    # ---- queries ----------------------------------------------------------------------------------
    def select(self, node: exp.Select, outer: list[dict[str, Source]], ctes: dict[str, Source]) -> None:
        ctes = self.with_(node, outer, ctes)
        from_ = node.args.get("from_") or node.args.get("from")
        items: list[tuple[Source, exp.Join | None]] = []
        if from_ is not None:
            items.append((self.source(from_.this, ctes, outer), None))
        for join in node.args.get("joins") or []:
            items.append((self.source(join.this, ctes, outer), join))
        self.body(node, node.args.get("where"), items, outer, ctes)

    def dml(self, node: exp.Update | exp.Delete, outer: list[dict[str, Source]], ctes: dict[str, Source]) -> None:
        """UPDATE t [FROM …] / DELETE FROM t [USING …]: the target joined with the other sources by WHERE."""
        ctes = self.with_(node, outer, ctes)
        items: list[tuple[Source, exp.Join | None]] = [(self.source(node.this, ctes, outer), None)]
        from_ = node.args.get("from_") or node.args.get("from")
        others = [from_.this] if from_ is not None else []
        others += list(node.args.get("using") or [])
        for other in others:
            items.append((self.source(other, ctes, outer), exp.Join(this=other)))
        for join in node.args.get("joins") or []:
            items.append((self.source(join.this, ctes, outer), join))
        self.body(node, node.args.get("where"), items, outer, ctes)

    def body(
        self,
        node: exp.Expression,
        where: exp.Where | None,
        items: list[tuple[Source, exp.Join | None]],
        outer: list[dict[str, Source]],
        ctes: dict[str, Source],
    ) -> None:
        local = {s.alias: s for s, _ in items}
        where_terms = _conjuncts(where.this) if where is not None else []
        # joins of two distributed sides
        before: list[Source] = []
        for src, join in items:
            left = [s for s in before if s.distributed]
            if join is not None and src.distributed and left:
                self.stats.distributed_joins += 1
                if not self.join_ok(src, join, left, local, where_terms):
                    self.out.append(self.join_violation(node, src, join, left, local))
            before.append(src)
        # correlated with an enclosing query
        if outer:
            self.correlation(node, local, outer, items, where_terms)
        # subqueries in expressions (WHERE, SELECT list, ON, SET, HAVING …)
        for query in _nested_queries(node):
            self.visit(query, [local, *outer], ctes)

    def join_ok(
        self,
        src: Source,
        join: exp.Join,
        left: list[Source],
        local: dict[str, Source],
        where_terms: list[exp.Expression],
    ) -> bool:
        using = join.args.get("using") or []
        if any(_name(u) == KEY for u in using):
            return True
        terms = _conjuncts(join.args["on"]) if join.args.get("on") else []
        if not join.args.get("side"):  # inner or comma join: the WHERE restricts it alike
            terms += where_terms
        left_aliases = {s.alias for s in left}
        for a, b in _key_pairs(terms, {"": local}):
            if (a == src.alias and b in left_aliases) or (b == src.alias and a in left_aliases):
                return True
        return False

    def join_violation(
        self, node: exp.Expression, src: Source, join: exp.Join, left: list[Source], local: dict[str, Source]
    ) -> Violation:
        side = (join.args.get("side") or "").upper()
        kind = f"{side} JOIN".strip() if join.args.get("on") or join.args.get("using") else "comma join"
        on = join.args.get("on")
        named = {c.table.lower() for c in on.find_all(exp.Column)} if on is not None else set()
        direct = [s for s in left if s.alias in named]
        through = sorted(local[a].label for a in named if a in local and not local[a].distributed)
        how = f" (joined through {', '.join(through)})" if not direct and through else ""
        others = direct or left
        pairs = frozenset(frozenset({a, b}) for o in others for a in src.tables for b in o.tables)
        return Violation(
            f"{kind} of {src.label} with {', '.join(o.label for o in others)}{how} without {KEY} equality: "
            f"{self.text(node)}",
            pairs,
        )

    def correlation(
        self,
        node: exp.Expression,
        local: dict[str, Source],
        outer: list[dict[str, Source]],
        items: list[tuple[Source, exp.Join | None]],
        where_terms: list[exp.Expression],
    ) -> None:
        inner = {s.alias for s in local.values() if s.distributed}
        if not inner:
            return
        referenced: dict[str, Source] = {}
        for column in _own_columns(node):
            table = column.table.lower()
            if not table or table in local:
                continue
            found = _lookup(table, outer)
            if found is not None and found.distributed:
                referenced[table] = found
        if not referenced:
            return
        terms = list(where_terms)
        for _src, join in items:
            if join is not None and join.args.get("on"):
                terms += _conjuncts(join.args["on"])
        scopes = {"": local, **{alias: {alias: s} for alias, s in referenced.items()}}
        pairs = _key_pairs(terms, scopes)
        for alias, src in referenced.items():
            self.stats.correlated += 1
            if not any((a == alias and b in inner) or (b == alias and a in inner) for a, b in pairs):
                tables = {t for a in inner for t in local[a].tables}
                self.out.append(
                    Violation(
                        f"correlated subquery on {', '.join(sorted(local[a].label for a in inner))} with outer "
                        f"{src.label} without {KEY} equality: {self.text(node)}",
                        frozenset(frozenset({a, b}) for a in tables for b in src.tables),
                    )
                )


# ---- helpers ----------------------------------------------------------------------------------------
def _children(node: exp.Expression) -> Iterator[exp.Expression]:
    for value in node.args.values():
        for child in value if isinstance(value, list) else [value]:
            if isinstance(child, exp.Expression):
                yield child


def _own_parts(node: exp.Expression, skip: set[str]) -> Iterator[exp.Expression]:
    """``node``'s own expressions but those under ``skip`` (a join contributes its ON condition)."""
    for key, value in node.args.items():
        if key in skip:
            continue
        for child in value if isinstance(value, list) else [value]:
            if not isinstance(child, exp.Expression):
                continue
            if key == "joins" and isinstance(child, exp.Join):
                child = child.args.get("on")
                if child is None:
                    continue
            yield child


def _nested_queries(node: exp.Expression) -> Iterator[exp.Expression]:
    """The queries in ``node``'s own expressions (not its FROM/JOIN sources nor its WITH), outermost
    only."""
    skip = {"from", "from_", "with", "with_", "this" if isinstance(node, (exp.Update, exp.Delete)) else "", "using"}
    for child in _own_parts(node, skip):
        yield from _queries_in(child)


def _queries_in(node: exp.Expression) -> Iterator[exp.Expression]:
    if isinstance(node, (*QUERY, exp.Subquery)):
        yield node
        return
    for child in _children(node):
        yield from _queries_in(child)


def _own_columns(node: exp.Expression) -> Iterator[exp.Column]:
    """Columns in ``node``'s own expressions (not inside nested queries nor its sources)."""

    def walk(n: exp.Expression) -> Iterator[exp.Column]:
        if isinstance(n, (*QUERY, exp.Subquery)):
            return
        if isinstance(n, exp.Column):
            yield n
            return
        for child in _children(n):
            yield from walk(child)

    for child in _own_parts(node, {"from", "from_", "with", "with_", "using"}):
        yield from walk(child)


def _conjuncts(node: exp.Expression) -> list[exp.Expression]:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        return _conjuncts(node.left) + _conjuncts(node.right)
    return [node]


def _name(node: exp.Expression) -> str:
    return (node.name if hasattr(node, "name") else node.sql()).lower()


def _lookup(alias: str, scopes: list[dict[str, Source]]) -> Source | None:
    for scope in scopes:
        if alias in scope:
            return scope[alias]
    return None


def _key_pairs(terms: list[exp.Expression], scopes: dict[str, dict[str, Source]]) -> list[tuple[str, str]]:
    """(alias, alias) of the terms ``a.key = b.key`` where both columns are key columns of their sources.
    ``scopes[""]``: the query's own sources (an unqualified column resolves there when it has one
    source); the other entries: outer sources by alias."""
    local = scopes[""]

    def side(col: exp.Expression) -> str | None:
        while isinstance(col, exp.Paren):
            col = col.this
        if not isinstance(col, exp.Column):
            return None
        table = col.table.lower()
        if not table:
            if len(local) != 1:
                return None
            table = next(iter(local))
        src = local.get(table) or scopes.get(table, {}).get(table)
        if src is None or col.name.lower() not in src.keys:
            return None
        return table

    pairs = []
    for term in terms:
        if isinstance(term, exp.EQ):
            a, b = side(term.left), side(term.right)
            if a is not None and b is not None and a != b:
                pairs.append((a, b))
    return pairs
