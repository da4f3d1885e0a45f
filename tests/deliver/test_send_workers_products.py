"""With worker processes (``campaign send --workers 2``), each worker recommends its people's
products from the model and stock the sending process hands it: every e-mail lists the products
the recommendation service gives that person on their own (learned neighbours and tastes,
guardrails), and a person who refused personalization gets the popular ones."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from campaign_world import add_people, consent, document, email_of
from import_helpers import write_file
from smtp_sink import Sink, free_port, start
from test_campaign_content import expected_products, lines_of, templates

from surmesure.clock import utcnow
from surmesure.collect.importer import import_file
from surmesure.config import get_settings
from surmesure.decide.recommend.model import get_model
from surmesure.deliver import documents, service
from surmesure.deliver.channels import open_channel
from surmesure.store import Store

PEOPLE, PRODUCTS = 60, 24
#: what the template prints above the products for a person without derived metrics
HEAD = ["points=0 tier=member best=any", "top=our shop value=?"]


def _shop(store: Store, folder: Path) -> dict[int, int]:
    """People who each bought three products of a catalogue in four categories, enough of
    them for the model to learn neighbours and tastes."""
    ids = add_people(store, folder, PEOPLE)
    products = [
        {"product_code": f"P{j:02d}", "name": f"Produit {j}", "category": f"cat{j % 4}",
         "price": 5.0 + j}
        for j in range(PRODUCTS)
    ]  # fmt: skip
    import_file(store, "products", write_file(folder, "products", "csv", products))
    bought = utcnow() - timedelta(days=40)
    lines = [
        {
            "order_id": f"o{i}",
            "customer_id": f"C{i}",
            "ordered_at": (bought + timedelta(hours=i)).isoformat(sep=" ", timespec="seconds"),
            "product_code": f"P{j:02d}",
            "quantity": 1,
            "unit_price": 5.0,
        }
        for i in range(1, PEOPLE + 1)
        for j in sorted({i % PRODUCTS, (7 * i) % PRODUCTS, (3 * i + 1) % PRODUCTS})
    ]
    import_file(store, "orders", write_file(folder, "orders", "csv", lines))
    return ids


@pytest.mark.usefixtures("templates")  # the content tests' library (`loyalty_mail`)
def test_workers_recommend_what_the_service_recommends(store: Store, tmp_path: Path) -> None:
    ids = _shop(store, tmp_path)
    consent(store, ids[PEOPLE], "personalization", "email", False, utcnow() - timedelta(days=1))
    sink, port = Sink(), free_port()
    server = start(port, sink)
    try:
        doc = document(
            channels={"email": {"template": "loyalty_mail"}}, policy={"order": ["email"]}
        )
        documents.save(store, documents.parse(doc), utcnow())
        url = f"smtp://127.0.0.1:{port}?sender=news@example.com&pool=1"
        here = open_channel(url, get_settings())
        report = service.send(
            store, "spring", utcnow(), channels={"email": here}, folder=tmp_path / "outbox",
            batch=16, workers=2, urls={"email": url},
        )  # fmt: skip
        here.close()
    finally:
        server.stop()
    assert report.sent is not None and report.sent.counts == {"sent": PEOPLE}
    assert (tmp_path / "outbox" / "spring.workers").exists()  # the workers rendered them
    assert get_model(store, None, None).learned is not None  # neighbours and tastes took part
    mails = {str(m["To"]): str(m.get_body(("plain",)).get_content()) for m in sink.messages()}
    assert len(mails) == PEOPLE
    for i, person in ids.items():
        listed = expected_products(store, None if i == PEOPLE else person)
        assert lines_of(mails[email_of(i)]) == [*HEAD, *listed], i
    # people are told apart: the lists are personal, and the neutral one is the popular list
    assert len({mails[email_of(i)] for i in range(1, PEOPLE)}) > 10
    assert expected_products(store, None) != expected_products(store, ids[1])


__all__ = ["templates"]  # the fixture, imported to be in force here
