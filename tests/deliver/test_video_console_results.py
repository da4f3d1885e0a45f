"""A video campaign's results page in the console shows its films' figures: the people who
opened their page, started the film, played each quarter, played it to the end and followed a
button, as the campaign's results count them."""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa
from api_helpers import serving
from campaign_world import T0, add_people
from console_helpers import make_users, session_client
from video_campaign_world import save, video_campaign, write_template

from surmesure.deliver import video_results
from surmesure.store import Store, schema

#: what each of four people did with their film
DID = {
    1: ["opened", "played", "quarter_25", "quarter_50", "quarter_75", "completed", "clicked"],
    2: ["opened", "played", "quarter_25", "clicked", "clicked"],
    3: ["opened", "played"],
    4: ["opened"],
}


def test_the_results_page_shows_the_films_figures(duckdb_store: Store, tmp_path: Path) -> None:
    store = duckdb_store
    ids = add_people(store, tmp_path, 5)
    save(store, video_campaign("spring", write_template(tmp_path)), T0, tmp_path)
    rows = [
        {"activity_id": f"{i}-{n}-{kind}", "person_id": ids[i], "node_id": ids[i],
         "channel": "video", "kind": kind, "campaign": "spring", "occurred_at": T0,
         "source": "video_page"}
        for i, kinds in DID.items() for n, kind in enumerate(kinds)
    ]  # fmt: skip
    with store.begin() as conn:
        conn.execute(schema.channel_activity.insert(), rows)
        expected = video_results.measure(conn, "spring")
    assert expected["views"] == 3 and expected["completed"] == 1 and expected["clicks"] == 3
    make_users(store)
    with serving(store) as (base, _app), session_client(base, "viewer") as (client, _):
        page = client.get("/console/campaigns/spring/results")
    assert page.status_code == 200, page.text[:2000]
    shown = dict(re.findall(r'<tr data-film="(\w+)">.*?data-people="(\d+)"', page.text))
    assert {k: int(v) for k, v in shown.items()} == {
        "pages_opened": 4, "views": 3, "quarter_25": 2, "quarter_50": 1, "quarter_75": 1,
        "completed": 1, "clicked": 2,
    }  # fmt: skip
    assert shown["views"] == str(expected["views"]) and shown["clicked"] == str(expected["clicked"])
    assert 'data-film="completion_rate">33.3%<' in page.text  # 1 of 3 who started
    assert re.search(r'data-film="clicks">3<', page.text)
    assert "People at each stage of their film" in page.text  # the funnel's chart
    with store.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.messages)).scalar() == 0
