"""Alembic migrations, shipped as the package mailbot.migrations."""
