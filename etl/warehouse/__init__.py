"""Warehouse: the database the ETL writes and everyone else reads.

Owns the engine and bulk I/O (``db``), the rules' table reader (``reads``:
datetimes as epoch seconds, through the run's snapshots), clip ownership and
interval arithmetic (``intervals``), the tables and public views
(``schema``), the transactional incremental load (``load``), what the load
keeps beside the mirrors (``fingerprints``, ``snapshots``, ``clip_runs``,
``clip_days``), the media integrity check (``integrity``) and the unit scope
(``scope``: the one place that says which units a user's scope covers).

May import: ``etl.sources``, ``etl.errors`` and itself.  Never rules, scoring or reports.
"""
