"""``surmesure render`` shows the products a decision shows: the command builds a person's
products on the decisions' path (it once printed an empty list where ``POST /v1/decide`` gave
four)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import typer
from test_campaign_content import expected_products, lines_of, world
from typer.testing import CliRunner

from surmesure.cli import render as render_cli
from surmesure.config import get_settings
from surmesure.decide.library import Library
from surmesure.decide.recommend.model import clear_cache
from surmesure.decide.service import DecideRequest, decide
from surmesure.store import Store

TEMPLATE = """
name: picks
placement: email_picks
channel: email
format: text
locale: fr
currency: EUR
fields:
  first_name: {trait: first_name, fallback: ""}
variants:
  - name: default
    subject: "Pour vous"
    body: |
      {% for p in products %}
      * {{ p.name }} {{ p.price|money(currency) }}
      {% else %}
      nothing to recommend
      {% endfor %}
"""


def test_render_lists_the_products_a_decision_lists(
    duckdb_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = duckdb_store
    ids = world(store, tmp_path)
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "picks.yaml").write_text(TEMPLATE)
    monkeypatch.setenv("SURMESURE_TEMPLATES_DIR", str(folder))
    monkeypatch.setenv("SURMESURE_DATABASE_URL", store.url)
    get_settings.cache_clear()
    clear_cache()
    try:
        app = typer.Typer()
        render_cli.register(app)
        args = ["render", "picks", "--person", "customer_id:C1", "--json"]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        shown = orjson.loads(result.stdout)
        request = DecideRequest("email_picks", customer_id="C1")
        decided = decide(store, request, Library(folder).named("picks"))
    finally:
        get_settings.cache_clear()
        clear_cache()
    want = expected_products(store, ids[1])
    assert len(want) == 4  # C1 bought: four products recommended for them
    assert lines_of(shown["body"]) == want
    assert lines_of(decided["content"]["body"]) == want
