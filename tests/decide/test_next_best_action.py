"""A template's next best action: ``uplift actions --save`` keeps the fitted models in the
store, and a decision gives each person the variant of the action the model ranks first, the
neutral variant for "do nothing" or a feature it cannot read, with the arithmetic in its
explanation; on DuckDB and PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import server_key, settings_for
from decide_world import DAY, add_person

from action_model_world import experiment, kept, recency, save
from conftest import invoke
from surmesure.api.app import create_app
from surmesure.clock import utcnow
from surmesure.decide import action_models
from surmesure.decide.content import Audience, CompiledTemplate, render
from surmesure.decide.decisions import why
from surmesure.decide.library import parse_template
from surmesure.decide.next_best import pick
from surmesure.decide.service import DecideRequest, decide
from surmesure.errors import InvalidInput, NotFound
from surmesure.store import Store

TEMPLATE = """
name: offer_mail
placement: offer_mail
channel: email
variants:
  - {name: mens, subject: Men, body: "For him"}
  - {name: womens, subject: Women, body: "For her"}
  - {name: neutral, subject: News, body: "Our news"}
next_best_action:
  model: offer
  actions: {mens: mens, womens: womens}
  features:
    recency: {metric: recency_days}
    zip: {trait: zip_code}
"""


def person(store: Store, person_id: int, days: int | None, zip_code: str) -> None:
    now = utcnow()
    add_person(store, person_id, {"zip_code": (zip_code, "crm", 0.9, now - DAY)})
    if days is None:
        return
    recency(store, person_id, days, now)


def decided(store: Store, compiled: CompiledTemplate, person_id: int) -> dict[str, Any]:
    request = DecideRequest(placement="offer_mail", person_id=person_id, products=0)
    return decide(store, request, compiled, use_default_recommender=False)


def test_a_decision_gives_the_action_the_saved_model_ranks_first(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    csv = experiment(tmp_path / "test.csv")
    assert save(monkeypatch, store, csv)["saved"] == {"model": "offer", "version": 1}
    assert save(monkeypatch, store, csv)["saved"] == {"model": "offer", "version": 2}
    person(store, 1, 2, "Rural")  # recent: the men's mail lifts them
    person(store, 2, 11, "Urban")  # urban, long gone: the women's mail
    person(store, 3, 6, "Rural")  # nothing lifts them: nothing is worth its cost
    person(store, 4, None, "Urban")  # no derived metrics: recency is missing
    compiled = CompiledTemplate(parse_template(TEMPLATE, "offer_mail.yaml"))
    with store.connect() as conn:
        model = action_models.load(conn, "offer")
    assert model.version == 2
    got = {p: decided(store, compiled, p) for p in (1, 2, 3, 4)}
    variants = {p: r["content"]["variant"] for p, r in got.items()}
    assert variants == {1: "mens", 2: "womens", 3: "neutral", 4: "neutral"}
    for p, days, zip_code in ((1, 2, "Rural"), (2, 11, "Urban"), (3, 6, "Rural")):
        row, _ = model.row({"recency": days, "zip": zip_code})
        assert row is not None
        choice, uplift = model.choose(row)
        note = got[p]["explanation"]["content"]["next_best_action"]
        assert note["action"] == choice.name(0)
        assert note["arithmetic"] == choice.explain(0, uplift)
        assert note["version"] == 2
        assert [o["action"] for o in note["options"]] == ["mens", "womens"]
    assert got[3]["explanation"]["content"]["next_best_action"]["action"] == "do nothing"
    assert "do nothing" in got[3]["explanation"]["content"]["variant"]["reason"]
    fallback = got[4]["explanation"]["content"]
    assert fallback["next_best_action"]["action"] is None
    assert "metric recency_days: missing" in fallback["variant"]["reason"]
    logged = why(store, 1)  # the decision log keeps the explanation, sealed at rest
    assert (
        logged[0]["explanation"]["content"]["next_best_action"]
        == (got[1]["explanation"]["content"]["next_best_action"])
    )


def test_an_unreliable_or_unseen_feature_falls_back(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept(monkeypatch, store, tmp_path)
    person(store, 1, 2, "Suburban")  # a level the model never saw
    add_person(store, 2, {"zip_code": ("Rural", "guess", 0.2, utcnow() - DAY)})
    compiled = CompiledTemplate(parse_template(TEMPLATE, "offer_mail.yaml"))
    unseen = decided(store, compiled, 1)["explanation"]["content"]
    assert unseen["variant"]["name"] == "neutral"
    assert "'Suburban' is not one of the levels" in unseen["variant"]["reason"]
    weak = decided(store, compiled, 2)["explanation"]["content"]["variant"]
    assert weak["name"] == "neutral"
    assert "trait zip_code: reliability 0.20 < 0.5" in weak["reason"]


def test_the_saved_model_survives_a_new_process(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept(monkeypatch, store, tmp_path)
    with store.connect() as conn:
        here = action_models.load(conn, "offer")
    row, _ = here.row({"recency": 2, "zip": "Rural"})
    assert row is not None
    expected = here.choose(row)[0].explain(0, here.choose(row)[1])
    url = store.url
    store.dispose()  # DuckDB: one process holds the file at a time
    script = (
        "import sys\n"
        "from surmesure.decide import action_models\n"
        "from surmesure.store import open_store\n"
        "store = open_store(sys.argv[1])\n"
        "with store.connect() as conn:\n"
        "    m = action_models.load(conn, 'offer')\n"
        "row, _ = m.row({'recency': 2, 'zip': 'Rural'})\n"
        "choice, uplift = m.choose(row)\n"
        "print(m.version, choice.explain(0, uplift))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, url], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"1 {expected}"
    assert expected.startswith("mens (mens: uplift +0.")


def test_validation_names_the_field(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InvalidInput) as bad_variant:
        parse_template(TEMPLATE.replace("womens: womens}", "womens: women}"), "t.yaml")
    assert bad_variant.value.field == "next_best_action.actions.womens"
    with pytest.raises(InvalidInput) as bad_metric:
        parse_template(TEMPLATE.replace("recency_days", "recency_dayz"), "t.yaml")
    assert bad_metric.value.field == "next_best_action.features.recency.metric"
    with store.connect() as conn, pytest.raises(NotFound) as unsaved:
        action_models.load(conn, "offer")
    assert unsaved.value.field == "next_best_action.model"
    kept(monkeypatch, store, tmp_path)
    with store.connect() as conn:
        model = action_models.load(conn, "offer")
    unmapped = parse_template(TEMPLATE.replace("    zip: {trait: zip_code}\n", ""), "t.yaml")
    with pytest.raises(InvalidInput) as missing:
        pick(unmapped, model, Audience(person_id=1))
    assert missing.value.field == "next_best_action.features.zip"
    bad_name = invoke(
        monkeypatch,
        store.url,
        "uplift",
        "actions",
        "x.csv",
        "--treatment-column",
        "s",
        "--arms",
        "a",
        "--control",
        "c",
        "--outcome",
        "y",
        "--save",
        "Bad",
    )
    assert bad_name.exit_code != 0 and "--save 'Bad'" in bad_name.output


def test_post_decide_gives_the_variant_the_model_picks(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept(monkeypatch, store, tmp_path)
    person(store, 1, 2, "Rural")
    person(store, 3, 6, "Rural")
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "offer_mail.yaml").write_text(TEMPLATE, encoding="utf-8")
    key = server_key(store, "decide")
    app = create_app(settings_for(store, templates_dir=folder), store)

    async def calls() -> dict[int, httpx.Response]:  # in process: no port opened
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
        ):
            body = {"placement": "offer_mail"}
            return {
                p: await client.post("/v1/decide", json={**body, "person_id": p}, auth=(key, ""))
                for p in (1, 3)
            }

    answers = asyncio.run(calls())
    assert answers[1].status_code == 200, answers[1].text
    assert answers[1].json()["content"]["variant"] == "mens"
    assert answers[3].json()["content"]["variant"] == "neutral"
    note = answers[3].json()["explanation"]["content"]["next_best_action"]
    assert note["action"] == "do nothing" and len(note["options"]) == 2


def test_without_a_pick_the_template_renders_its_default_variant() -> None:
    compiled = CompiledTemplate(parse_template(TEMPLATE, "offer_mail.yaml"))
    done = render(compiled, Audience(person_id=1), now=utcnow())
    assert done.variant == "neutral"  # not "mens", the first variant, which has no rule
    assert "not applied" in done.explanation["variant"]["reason"]
