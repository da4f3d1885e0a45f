"""A purchase the dispatcher tells of reaches the next recommendations for the buyer within a
second, while the model for now is kept (it is not built again)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from import_helpers import write_file
from reco_world import MAPPING, load_world, person_id

from surmesure.clock import utcnow
from surmesure.collect.importer import import_file
from surmesure.config import get_settings
from surmesure.decide.recommend import model, service
from surmesure.decide.serving import Serving
from surmesure.dispatch.background import Background
from surmesure.store import Store


@pytest.fixture
def served(store: Store, tmp_path: Path) -> Iterator[Background]:
    """The shop, a started serving cache (which keeps the model for now) and the server's
    dispatcher, as ``surmesure serve`` runs them."""
    model.clear_cache()
    load_world(store, tmp_path)
    serving = Serving(store, refresh_seconds=3_600, flush_ms=20)
    dispatcher = Background(store, get_settings(), period=0.2, gap=0.0)
    serving.start()
    dispatcher.start()
    try:
        yield dispatcher
    finally:
        dispatcher.stop()
        serving.stop()
        model.clear_cache()


def _codes(store: Store, pid: int) -> list[str]:
    return [r.product_code for r in service.recommend(store, pid, k=8)]


def test_a_purchase_leaves_the_next_recommendations_without_a_new_model(
    store: Store, served: Background, tmp_path: Path
) -> None:
    pid = person_id(store, "C2")
    kept = model.get_model(store, None, None)
    offered = _codes(store, pid)
    assert offered, "the shop offers C2 something to buy"
    chosen = offered[0]
    line = {"order_id": "w1", "customer_id": "C2", "product_code": chosen, "quantity": 1,
            "unit_price": 1.0, "ordered_at": f"{utcnow():%Y-%m-%d %H:%M:%S}"}  # fmt: skip
    mapping = tmp_path / "orders.yaml"
    mapping.write_text(MAPPING)
    folder = tmp_path / "new"
    folder.mkdir()
    import_file(store, "orders", write_file(folder, "orders", "csv", [line]), mapping=mapping)
    served.kick()
    started = time.monotonic()
    while chosen in _codes(store, pid):
        assert time.monotonic() - started < 1.0, f"{chosen} is still offered after 1 s"
        time.sleep(0.01)
    assert model.get_model(store, None, None) is kept
