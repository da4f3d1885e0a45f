"""A person decided for again gets the list already picked while the model, the stock and
what the model holds of them are the same; a change of stock picks again."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from reco_world import AS_OF, load_world, person_id

from surmesure.decide.recommend import inventory, model, people, service
from surmesure.store import Store, schema


@pytest.fixture
def shop(store: Store, tmp_path: Path) -> Store:
    model.clear_cache()
    inventory.clear_snapshots()
    load_world(store, tmp_path)
    return store


def test_the_list_is_kept_until_the_stock_changes(shop: Store) -> None:
    pid = person_id(shop, "C3")
    with shop.connect() as conn:
        held = model.get_model(shop, conn, AS_OF)
        data = held.people.get(pid) or people.person(conn, pid, held.as_of)
    first = service.recommend(shop, pid, as_of=AS_OF, person=data, k=3)
    assert first
    picks = model.get_model(shop, None, AS_OF).memo["picks"]
    assert len(picks) == 1
    kept = next(iter(picks.values()))[2]
    assert service.recommend(shop, pid, as_of=AS_OF, person=data, k=3) == first
    assert next(iter(picks.values()))[2] is kept  # not picked again
    # nor when the person is read again from the model, as each decision does
    again = model.person_data(shop, held, pid)
    assert again is not None and again is not data
    assert service.recommend(shop, pid, as_of=AS_OF, person=again, k=3) == first
    assert next(iter(picks.values()))[2] is kept
    # another length is another list
    assert len(service.recommend(shop, pid, as_of=AS_OF, person=data, k=1)) == 1
    assert len(picks) == 2

    # the first product runs out online (C3 has no home store): the next stock snapshot
    # leaves it out
    gone = first[0].product_code
    with shop.begin() as conn:
        conn.execute(schema.stock.delete().where(schema.stock.c.product_code == gone))
        conn.execute(
            schema.stock.insert().values(
                product_code=gone, store_id="online", quantity=0, updated_at=datetime(2024, 5, 25)
            )
        )
    inventory.clear_snapshots()
    after = service.recommend(shop, pid, as_of=AS_OF, person=data, k=3)
    assert gone not in [r.product_code for r in after]
    inventory.clear_snapshots()
