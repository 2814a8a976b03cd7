"""Alembic migrations of the audit schema, shipped in the package.

``env.py`` runs them on the connection that :mod:`cleveragents.infrastructure.persistence.schema`
hands over (``config.attributes["connection"]``), or, for a developer's ``alembic``
command, on ``sqlalchemy.url`` from ``alembic.ini``. The version table is
``cleveragents_audit_version``, so that an application's own Alembic history in the
same database is left alone.

A schema change is a new file in ``versions/`` (``alembic revision -m "..."`` from
the repository root writes one from ``script.py.mako``), the matching change to
``table.py``, and a test that upgrades a database of the previous revision with
rows in it (see ``tests/infrastructure/persistence/test_schema.py``).
"""
