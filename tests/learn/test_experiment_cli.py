"""``surmesure experiment analyze`` on Hillstrom, CSV and Parquet, tables and JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import typer
from statsmodels.stats.multitest import multipletests
from typer.testing import CliRunner

from conftest import dataset
from surmesure.cli import experiment

pytestmark = pytest.mark.realdata
runner = CliRunner()


def make_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """Test shell."""

    experiment.register(app)
    return app


def run(*args: str) -> Any:
    result = runner.invoke(make_app(), ["experiment", "analyze", *args])
    assert result.exit_code == 0, result.output
    return result


def hillstrom_args(path: Path, metric: str) -> list[str]:
    return [str(path), "--variant-column", "segment", "--control", "No E-Mail", "--metric", metric]


def test_json_reports_sizes_means_lifts_and_srm() -> None:
    path = dataset("hillstrom/hillstrom.csv")
    out = orjson.loads(run(*hillstrom_args(path, "visit"), "--json").stdout)
    rows = {v["variant"]: v for v in out["variants"]}
    assert out["kind"] == "binomial"
    assert {k: v["n"] for k, v in rows.items()} == {
        "No E-Mail": 21_306,
        "Mens E-Mail": 21_307,
        "Womens E-Mail": 21_387,
    }
    assert f"{rows['Womens E-Mail']['mean']:.4f}" == "0.1514"
    mens = rows["Mens E-Mail"]["comparison"]
    assert mens["absolute"]["ci_lower"] < 0.0766 < mens["absolute"]["ci_upper"]
    assert rows["Mens E-Mail"]["bayes"]["model"] == "beta-binomial"
    assert out["srm"]["mismatch"] is False


def test_breakdown_adjusts_p_values_across_all_cells(tmp_path: Path) -> None:
    parquet = tmp_path / "hillstrom.parquet"
    pq.write_table(pacsv.read_csv(dataset("hillstrom/hillstrom.csv")), parquet)
    out = orjson.loads(run(*hillstrom_args(parquet, "spend"), "--by", "channel", "--json").stdout)
    cells = [v for seg in out["breakdown"]["segments"] for v in seg["variants"] if v["comparison"]]
    assert len(cells) == 2 * len(out["breakdown"]["segments"]) == 6
    raw = [c["comparison"]["absolute"]["p_value"] for c in cells]
    _, expected, _, _ = multipletests(raw, method="fdr_bh")
    assert [c["p_value_adjusted"] for c in cells] == pytest.approx(list(expected), abs=1e-12)
    assert sum(seg["variants"][0]["n"] for seg in out["breakdown"]["segments"]) == 21_306


def test_cuped_with_a_covariate_narrows_the_interval() -> None:
    path = dataset("hillstrom/hillstrom.csv")
    plain = orjson.loads(run(*hillstrom_args(path, "spend"), "--json").stdout)
    cuped = orjson.loads(
        run(*hillstrom_args(path, "spend"), "--covariate", "history", "--json").stdout
    )
    se_plain = plain["variants"][1]["comparison"]["absolute"]["std_error"]
    se_cuped = cuped["variants"][1]["comparison"]["absolute"]["std_error"]
    assert cuped["variants"][1]["comparison"]["theta"] > 0
    assert se_cuped < se_plain


def test_tables_show_every_variant_and_the_srm_verdict() -> None:
    result = run(*hillstrom_args(dataset("hillstrom/hillstrom.csv"), "conversion"), "--sequential")
    assert "Mens" in result.stdout and "Womens" in result.stdout
    assert "sample ratio: ok" in result.stdout
    assert "sequential" in result.stdout


def test_unknown_column_is_a_clear_error() -> None:
    args = hillstrom_args(dataset("hillstrom/hillstrom.csv"), "revenue")
    result = runner.invoke(make_app(), ["experiment", "analyze", *args])
    assert result.exit_code == 2
    assert "revenue" in result.output and "spend" in result.output


def test_plot_draws_one_interval_per_segment_and_variant(tmp_path: Path) -> None:
    plot = tmp_path / "lift.svg"
    args = hillstrom_args(dataset("hillstrom/hillstrom.csv"), "visit")
    out = orjson.loads(run(*args, "--by", "zip_code", "--plot", str(plot), "--json").stdout)
    svg = plot.read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    for seg in out["breakdown"]["segments"]:
        assert f"{seg['segment']} / Womens E-Mail" in svg
    png = tmp_path / "lift.png"
    run(*args, "--plot", str(png))
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 5_000
