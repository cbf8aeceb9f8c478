"""Scoring: findings -> standard metrics and the scores of every unit (rules.md, schemes in config/schemes/).

``metrics`` (the standard metrics), then the scores, split by job: ``schemes``
(the one parser of config/schemes/*.yaml), ``inputs`` (what the scoring reads),
``items`` (item scores), ``totals`` (veto, grade, total, rank), ``lost_points``
(where lost points went: the workbook's 扣分明细, the dashboard's drill-down)
and ``scores.compute``, the one entry of the scoring step.

May import: ``etl.rules`` (rule ids and config), ``etl.warehouse``, ``etl.errors`` and itself.
Never reports, the pipeline or the dashboard.
"""
