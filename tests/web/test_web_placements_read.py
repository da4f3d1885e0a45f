"""Several placements on one page: the visitor is read from the store once for all of them,
and each placement answers as it does asked alone."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from web_helpers import Shop, shop_server

from surmesure.protect.keys import create_key
from surmesure.store import schema
from surmesure.web.identity import sign_user

CUSTOMER = "C-5151"
PLACEMENTS = ["home_banner", "hostile_banner"]


@pytest.fixture
def shop(migrated_duckdb: Path, tmp_path: Path) -> Iterator[Shop]:
    with shop_server(migrated_duckdb, tmp_path) as running:
        yield running


def _delivered(shop: Shop) -> None:
    """Wait until the server's dispatcher delivered every change (and told its cache)."""
    c, cursors = schema.changes.c, schema.change_cursors.c
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with shop.store.connect() as conn:
            last = conn.execute(sa.select(sa.func.max(c.change_id))).scalar()
            done = conn.execute(sa.select(sa.func.min(cursors.position))).scalar()
        if last is not None and done is not None and done >= last:
            time.sleep(0.2)  # what a delivery tells runs once it has committed
            return
        time.sleep(0.02)
    raise AssertionError("the dispatcher did not deliver the changes within 10 s")


def _shown(answer: httpx.Response) -> list[tuple[str, str]]:
    assert answer.status_code == 200, answer.text
    return [(p["placement"], p["content_id"]) for p in answer.json()["placements"]]


def test_two_placements_read_the_visitor_once(shop: Shop) -> None:
    # a customer identified once the server's cache was read whole: read on their first call
    serving = shop.app.state.serving
    cache = serving.view()
    key = create_key(shop.store, "crm-2", ["collect"], source="crm")[0]
    known = httpx.post(
        f"{shop.base}/v1/identify",
        json={"messageId": "crm-5151", "userId": CUSTOMER, "traits": {"first_name": "Lou"}},
        auth=(key, ""),
        timeout=30,
    )
    assert known.status_code == 200, known.text
    _delivered(shop)
    user = sign_user(shop.identity_secret, CUSTOMER, seconds=600)
    loads = cache.loads
    both = _shown(shop.decide({"user": user, "placements": PLACEMENTS}))
    assert cache.loads - loads == 1  # one read of the customer for both placements
    alone = [_shown(shop.decide({"user": user, "placements": [p]}))[0] for p in PLACEMENTS]
    assert both == alone
    assert cache.loads - loads == 1  # and none since: the customer is held
    assert serving.view() is cache
