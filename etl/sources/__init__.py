"""Sources: what the ETL reads, before anything touches the warehouse.

Owns the source contract (``contract``: tables, columns, keys, references of
``shared/spec/sources.md``), ``sources.yaml`` parsing (``config``), one reader
per source kind (``extract``) and staging (``staging``: rename, cast, validate,
quarantine; pure pandas).

May import: ``etl.errors`` and itself.  Never the warehouse, rules or reports.
"""
