"""The dashboard package behind ``app.py`` and ``pages/``.

Modules: ``auth`` (users file, roles, login context), ``queries`` (the one
scope-aware query layer), ``charts`` (pure DataFrame -> plotly figures),
``audit`` (append-only audit log of the dashboard), ``i18n`` (Chinese/English
labels), ``periods`` (period strings), ``ui`` (shared widgets of the pages).
"""
