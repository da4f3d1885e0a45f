"""``surmesure demo`` and ``surmesure generate`` from the command line, with --json."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from world_helpers import SMALL

from conftest import copy_demo, invoke, invoke_json
from surmesure.cli.demo_send import channels_to_reach


def test_demo_builds_the_world_and_recovers_its_truth(
    demo_world: tuple[Path, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the demo ran as its own process (it once crashed as it exited, all its work done: the
    # fonts its letters kept were freed after Pango was gone)
    built, report = demo_world
    out = built / "world"
    assert report["generated"]["written"] is True
    assert report["people"]["identified"] == SMALL == report["truth"]["customers"]
    assert report["tables"]["orders"] == report["truth"]["orders"]
    assert [s["kind"] for s in report["steps"][:4]] == ["stores", "products", "stock", "customers"]
    assert report["steps"][3]["source"] == "crm"
    assert all(s["seconds"] >= 0 for s in report["steps"])
    assert report["conflicts"] >= report["truth"]["households"] > 0
    assert report["quarantine"]["total"] > 0
    failed = [c for c in report["checks"] if not c["ok"]]
    assert not failed, failed
    assert report["tables"]["events"] == report["truth"]["web"]["messages"]
    assert report["people"]["anonymous"] == report["truth"]["web"]["anonymous_devices"]
    # then every person derived at the world's last day but those who object to profiling,
    # and the report written beside it
    derived = report["derive"]
    assert derived["people"] + derived["objectors"] == SMALL and derived["objectors"] > 0
    assert 0 < derived["buyers"] <= derived["people"]
    assert sum(derived["segments"].values()) == derived["buyers"]
    assert derived["report"] == str(out / "report.html")
    # and the recommendation model fitted and kept for whoever recommends
    fitted = derived["recommendation_model"]
    assert fitted["version"] == 1 and fitted["ranking"] and fitted["cpu_seconds"] > 0
    page = (out / "report.html").read_text()
    assert page.count("<svg") == len(derived["figures"]) >= 4
    assert {"RFM grid", "Cohort retention", "Channel appetence by segment"} <= set(
        derived["figures"]
    )

    # then a small campaign reached each channel's local server: the SMTP server, Kannel's fake
    # SMSC, the printer's PDF and the call list each hold what the campaign says it sent
    sent = report["campaign"]
    campaigns = sent["campaigns"]
    assert sorted(campaigns) == sorted(channels_to_reach()) and sent["audience"] > 0
    counts = {c: campaigns[c]["by_channel"][c].get("sent", 0) for c in campaigns}
    assert all(n > 0 for n in counts.values()), campaigns
    assert sent["smtp_messages"] == counts["email"]
    # each e-mail carried its person's page link, which delivered a web message at no cost;
    # the pages opened count as opens of the e-mail campaign
    pages = sent["pages"]
    assert pages["links"] == counts["email"]
    assert campaigns["email"]["by_channel"]["web"] == {"sent": counts["email"]}
    assert len(pages["examples"]) == 2 and all("/p/" in link for link in pages["examples"])
    assert pages["views"] == 4 and pages["pages_viewed"] == 3 == pages["opened"]
    assert sent["sms_messages"] == counts["sms"]
    if "paper" in counts:
        [pdf] = sent["paper_pdfs"]
        assert len(PdfReader(pdf).pages) >= counts["paper"]
    if "phone" in counts:
        [calls] = sent["call_lists"]
        with open(calls, newline="") as f:
            assert len(list(csv.DictReader(f))) == counts["phone"]

    # a second run, on a copy of the store and of the files, keeps the files and adds no fact
    # (reference data is upserted again)
    url = copy_demo(built, tmp_path)
    out = tmp_path / "world"
    again = invoke_json(monkeypatch, url, "demo", "--customers", str(SMALL), "--out", str(out))
    assert again["generated"] == {"written": False, "seconds": 0.0}
    assert again["people"] == report["people"]
    # (but the first run's page views: an opened activity each)
    views = {"channel_activity": report["tables"]["channel_activity"] + pages["views"]}
    assert again["tables"] == report["tables"] | views
    facts = [s for s in again["steps"] if s["kind"] not in ("stores", "products", "stock")]
    assert len(facts) >= 8
    assert facts[-1]["kind"] == "events" and facts[-1]["duplicate"] > 0
    assert all(s.get("rows_accepted", s.get("accepted")) == 0 for s in facts), facts
    # and sends nobody the campaign twice
    assert again["campaign"]["campaigns"] == campaigns
    assert again["campaign"]["smtp_messages"] == again["campaign"]["sms_messages"] == 0
    assert again["campaign"]["pages"]["links"] == again["campaign"]["pages"]["views"] == 0
    assert again["campaign"]["pages"]["opened"] == 3


def test_generate_writes_the_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"duckdb:///{tmp_path / 'unused.duckdb'}"
    out = tmp_path / "world"
    manifest = invoke_json(monkeypatch, url, "generate", "--customers", "500", "--out", str(out))
    assert manifest["folder"] == str(out)
    assert manifest["spec"]["customers"] == 500
    assert (out / "manifest.json").is_file()
    assert {f["file"] for f in manifest["files"]} == {p.name for p in out.iterdir()} - {
        "manifest.json"
    }
    assert not (tmp_path / "unused.duckdb").exists()


def test_generate_refuses_a_tiny_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"duckdb:///{tmp_path / 'unused.duckdb'}"
    result = invoke(monkeypatch, url, "generate", "--customers", "5", "--out", str(tmp_path))
    assert result.exit_code == 2
    assert "--customers" in result.output
