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
from surmesure.collect.ecommerce import ORDER_COMPLETED
from surmesure.collect.events import write_events
from surmesure.collect.importer import import_file
from surmesure.collect.segment import validate_messages
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


def test_a_web_purchase_reaches_the_next_recommendations_in_one_dispatcher_round(
    store: Store, tmp_path: Path
) -> None:
    """An ``Order Completed`` event becomes an order in a round of the dispatcher, and that
    order's change reaches the buyer's recommendations in the same round, with no kick of its
    own (a second round would wait for the dispatcher's period)."""
    model.clear_cache()
    load_world(store, tmp_path)
    serving = Serving(store, refresh_seconds=3_600, flush_ms=20)
    serving.start()
    try:
        dispatcher = Background(store, get_settings())
        pid = person_id(store, "C2")
        kept = model.get_model(store, None, None)
        chosen = _codes(store, pid)[0]
        purchase = {
            "type": "track",
            "messageId": "web-purchase-1",
            "userId": "C2",
            "event": ORDER_COMPLETED,
            "properties": {"order_id": "w2", "products": [{"product_id": chosen, "price": 1.0}]},
            "timestamp": f"{utcnow():%Y-%m-%dT%H:%M:%S}Z",
        }
        accepted, refused = validate_messages([purchase])
        assert not refused
        with store.begin() as conn:
            write_events(store, conn, accepted, source="web", received_at=utcnow())
        assert chosen in _codes(store, pid)  # nothing was delivered yet
        dispatcher._round()
        assert dispatcher.rounds == 1
        assert chosen not in _codes(store, pid)
        assert model.get_model(store, None, None) is kept
    finally:
        serving.stop()
        model.clear_cache()
