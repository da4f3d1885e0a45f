"""Opening a store: one already at the newest revision is recognised from the scripts' text,
without Alembic; one behind is upgraded. On both stores."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from surmesure.store import Store, open_store
from surmesure.store.engine import script_head
from surmesure.store.migrate import alembic_config, upgrade


def test_the_head_read_from_the_scripts_text_is_alembics(store: Store) -> None:
    scripts = ScriptDirectory.from_config(alembic_config(store))
    assert script_head() == scripts.get_current_head()
    assert store.at_head()


def test_a_store_behind_the_head_is_upgraded_when_opened(store: Store) -> None:
    previous = ScriptDirectory.from_config(alembic_config(store)).get_revision("head").down_revision
    assert isinstance(previous, str)
    from alembic import command

    config = alembic_config(store)
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        config.attributes["store"] = store
        command.downgrade(config, previous)
    assert not store.at_head()
    again = open_store(store.url)
    try:
        assert again.at_head()
        with again.connect() as conn:
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        assert version == script_head()
    finally:
        again.dispose()
    upgrade(store)
