"""How long the links of a message count: an open pixel or a tracked link records for
``tracking_token_days`` after the message was made, then still leads to its target and records
nothing; an unsubscribe link works for ``unsubscribe_link_days`` (two years by default), and
shortening that setting breaks no link already sent. Before, a tracking token recorded for
ever and an unsubscribe link died with the page links' 90 days."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa
from api_helpers import TEST_SECRET, serving
from itsdangerous import URLSafeSerializer
from people_rows import activity_rows, add_people

from surmesure.clock import utcnow
from surmesure.config import Settings
from surmesure.deliver import tracking
from surmesure.deliver.unsubscribe import UnsubscribeLinks
from surmesure.store import Store, schema

TARGET = "https://shop.example.com/spring"
DAY = timedelta(days=1)


def _links(base: str, made: datetime) -> tuple[str, str]:
    """(click, pixel) of a message made at ``made`` for person 7."""
    html = f'<html><body><a href="{TARGET}">go</a></body></html>'
    sent = tracking.track(html, 7, "spring", public_url=base, secret=TEST_SECRET, now=made)
    [click] = re.findall(rf'href="({re.escape(base)}/t/c/[^"]+)"', sent)
    [pixel] = re.findall(rf'src="({re.escape(base)}/t/o/[^"]+)"', sent)
    return click, pixel


def test_old_links_lead_on_recording_nothing_and_unsubscribe_lives_two_years(
    duckdb_store: Store,
) -> None:
    store = duckdb_store
    add_people(store, (7, None))
    now = utcnow()
    with serving(store, tracking_token_days=30, unsubscribe_link_days=30) as (base, app):
        old_click, old_pixel = _links(base, now - 31 * DAY)
        ahead_click, _ = _links(base, now + 2 * DAY)  # a time no server clock has reached
        click, pixel = _links(base, now - 29 * DAY)
        for link in (old_click, ahead_click):
            answer = httpx.get(link, follow_redirects=False)
            assert answer.status_code == 302 and answer.headers["location"] == TARGET
        image = httpx.get(old_pixel)
        assert image.status_code == 200 and image.content == tracking.PIXEL
        assert activity_rows(store, "kind") == []
        assert httpx.get(click, follow_redirects=False).status_code == 302
        assert httpx.get(pixel).status_code == 200
        assert sorted(activity_rows(store, "kind")) == [("clicked",), ("opened",)]

        assert Settings.model_fields["unsubscribe_link_days"].default == 730
        assert UnsubscribeLinks.from_settings(app.state.settings).days == 30  # new links
        too_old = UnsubscribeLinks(base, TEST_SECRET, clock=lambda: now - 731 * DAY)
        assert httpx.post(too_old.url(7)).status_code == 404
        assert _consents(store) == []
        a_year_ago = UnsubscribeLinks(base, TEST_SECRET, clock=lambda: now - 365 * DAY)
        assert httpx.post(a_year_ago.url(7)).status_code == 200  # made for 730 days
        assert _consents(store) == [False]


def test_a_token_made_before_tokens_carried_their_time_counts_from_the_upgrade() -> None:
    undated = URLSafeSerializer(TEST_SECRET, salt=tracking.SALT).dumps({"p": 7, "c": "x"})
    payload = tracking.read(undated, TEST_SECRET)
    assert payload is not None and "t" not in payload
    upgrade = datetime.fromtimestamp(tracking.UNDATED_MADE_AT, UTC).replace(tzinfo=None)
    assert tracking.fresh(payload, upgrade + 364 * DAY, 365)
    assert not tracking.fresh(payload, upgrade + 366 * DAY, 365)
    assert not tracking.fresh({"p": 7, "t": "soon"}, upgrade, 365)


def _consents(store: Store) -> list[bool]:
    c = schema.consents
    with store.connect() as conn:
        return list(conn.execute(sa.select(c.c.granted)).scalars())
