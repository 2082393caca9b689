"""Alembic environment: mailbot passes its engine in `config.attributes`; the CLI never needs alembic.ini."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from mailbot.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:  # plain `alembic` use by a developer: take the URL from -x url=…
        engine = create_engine(context.get_x_argument(as_dictionary=True)["url"])
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
            compare_type=True,
        )
        context.run_migrations()


run_migrations_online()
