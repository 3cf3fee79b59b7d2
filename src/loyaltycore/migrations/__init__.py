"""Alembic migrations of the store's schema (``loyalty db upgrade``; the store also
upgrades a database to the latest revision when it opens one)."""
