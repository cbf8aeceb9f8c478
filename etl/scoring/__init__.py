"""Scoring: findings -> standard metrics and the scores of every unit (rules.md, schemes in config/schemes/).

May import: ``etl.rules`` (rule ids and config), ``etl.warehouse``, ``etl.errors`` and itself.
Never reports, the pipeline or the dashboard.
"""
