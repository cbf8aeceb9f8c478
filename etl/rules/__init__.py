"""The regulation as checks: coverage and findings (shared/spec/rules.md).

``coverage`` rebuilds event_coverage and event_gaps, ``findings`` every rule
family's findings (``av``, ``cases``, ``equipment``, ``media``, over a
``context.Ctx``).  ``etl.evaluation.evaluate`` wires them, then the metrics
and the scores (``etl.scoring``), inside the run's transaction.

May import: ``etl.warehouse``, ``etl.sources``, ``etl.errors``, ``etl.times`` and itself.  Never scoring,
reports, the pipeline or the dashboard.
"""
