"""Alembic migrations of SendLab's store: ``versions/`` holds one revision per schema change.

:func:`experiments.store.schema.create_tables` (every ``sendlab serve`` start) and ``sendlab db upgrade``
run them; see :mod:`experiments.store.schema` for how a new, a current and an older store are told apart.
"""
