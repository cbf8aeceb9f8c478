"""The supervision record (shared/spec/supervision.md): what people decide about the findings.

Reviews (复核), appeals (申诉), Art. 17 explanations judged, publication (发布) of a period's scores and their
restatement.  These are judgements, not derived data: the tables (``etl.warehouse.schema.SUPERVISION_TABLES``)
are written only by the actions here, each in one transaction that checks (reason, role, scope, stale view),
writes, audits and recomputes what counts (``rescore``).  ``etl run`` never touches them.

The pages and the CLI call the same functions.  May import: ``etl.evaluation`` and everything below it
(``etl.reports``, ``etl.scoring``, ``etl.rules``, ``etl.warehouse``) and the low modules; never the pipeline,
the CLI, streamlit or the dashboard.
"""
