"""Next best action in decisions: the processor time of one ``decide`` call whose template's
variant a saved model picks (features read from the profile, two uplift models predicted),
against the same template without the model, in the same process and store; and the campaign
path: every person's choice in one batch, per person.

The model is fitted on Hillstrom (``uplift actions --save``, X-learner, spend, value 1, cost
0.1); N people get Hillstrom-like traits (recency in months, history, mens, womens, zip_code,
newbie, channel) drawn from the file's rows.

    python benchmarks/bench_next_best.py [--people 500] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pyarrow.csv as pacsv

from surmesure.clock import utcnow
from surmesure.collect import sink
from surmesure.decide import action_models, next_best
from surmesure.decide.content import CompiledTemplate
from surmesure.decide.library import parse_template
from surmesure.decide.service import DecideRequest, decide
from surmesure.deliver.audiences import load_audiences
from surmesure.learn.uplift import Action
from surmesure.learn.uplift.action_report import fit_actions
from surmesure.learn.uplift.data import read_arms_data
from surmesure.learn.uplift.saved import ActionModel, features_of
from surmesure.store import open_store, schema

HILLSTROM = Path(__file__).parent.parent / "../shared/datasets/hillstrom/hillstrom.csv"
FEATURES = ["recency", "history", "mens", "womens", "zip_code", "newbie", "channel"]
TEMPLATE = """
name: offer
placement: offer
variants:
  - {name: mens, body: "For him"}
  - {name: womens, body: "For her"}
  - {name: neutral, body: "Our news"}
next_best_action:
  model: hillstrom
  actions: {Mens E-Mail: mens, Womens E-Mail: womens}
  features: {FEATURES}
"""


def cpu() -> float:
    return time.process_time()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    store = open_store(f"duckdb:///{folder / 'store.duckdb'}")
    arms = ["Mens E-Mail", "Womens E-Mail"]
    start = cpu()
    data = read_arms_data(HILLSTROM, "segment", arms, "No E-Mail", "spend", FEATURES)
    report = fit_actions(data, [Action(a, 1.0, 0.1) for a in arms], "x", 0, rounds=50)
    model = ActionModel(
        "hillstrom",
        0,
        report.choice.actions,
        features_of(data.features, data.feature_names),
        report.models,
        "x",
    )
    now = utcnow()
    with store.begin() as conn:
        action_models.save(conn, model, now)
    fit_s = cpu() - start
    rows = pacsv.read_csv(HILLSTROM).slice(0, args.people).to_pylist()
    with store.begin() as conn:
        for i in range(1, len(rows) + 1):
            conn.execute(
                schema.people.insert().values(
                    person_id=i, merged_into=None, created_at=now, updated_at=now
                )
            )
        sink.write_traits(
            store,
            conn,
            record_keys=[f"{i}:{f}" for i in range(1, len(rows) + 1) for f in FEATURES],
            person_ids=[i for i in range(1, len(rows) + 1) for _ in FEATURES],
            node_ids=[i for i in range(1, len(rows) + 1) for _ in FEATURES],
            traits=[{f: row[f]} for row in rows for f in FEATURES],
            sources=["crm"] * (len(rows) * len(FEATURES)),
            observed_at=[now - timedelta(days=1)] * (len(rows) * len(FEATURES)),
            reliabilities=[0.9] * (len(rows) * len(FEATURES)),
        )
    mapping = "{" + ", ".join(f"{f}: {{trait: {f}}}" for f in FEATURES) + "}"
    with_model = CompiledTemplate(parse_template(TEMPLATE.replace("{FEATURES}", mapping), "t"))
    plain_doc = with_model.definition.model_copy(update={"next_best_action": None})
    plain = CompiledTemplate(plain_doc)
    timings = {}
    chosen: dict[str, int] = {}
    for name, compiled in (("plain", plain), ("next_best_action", with_model)):
        decide(
            store,
            DecideRequest("offer", person_id=1, products=0),
            compiled,
            use_default_recommender=False,
        )  # warm: the model is read once per process
        start = cpu()
        for i in range(1, len(rows) + 1):
            out = decide(
                store,
                DecideRequest("offer", person_id=i, products=0),
                compiled,
                use_default_recommender=False,
            )
            if name != "plain":
                v = out["content"]["variant"]
                chosen[v] = chosen.get(v, 0) + 1
        timings[name] = (cpu() - start) / len(rows)
    spec = with_model.definition.next_best_action
    assert spec is not None
    start = cpu()
    with store.connect() as conn:
        loaded = action_models.load(conn, "hillstrom")
        audiences = load_audiences(
            conn,
            list(range(1, len(rows) + 1)),
            now,
            store.settings.trait_half_life_days,
            channel="any",
            traits=set(FEATURES),
        )
    nothing = next_best.nothing_for(spec, loaded, audiences, 0.5)
    batch = (cpu() - start) / len(rows)
    result = {
        "people": len(rows),
        "fit_and_save_cpu_s": round(fit_s, 2),
        "decide_cpu_ms": {k: round(v * 1000, 3) for k, v in timings.items()},
        "ratio": round(timings["next_best_action"] / timings["plain"], 2),
        "variants": chosen,
        "campaign_batch_cpu_ms_per_person": round(batch * 1000, 4),
        "campaign_given_nothing": len(nothing),
        "load": os.getloadavg()[0],
    }
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    store.dispose()


if __name__ == "__main__":
    main()
