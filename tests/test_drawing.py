"""Matplotlib's settings are shared by the whole process: charts drawn at once on several
request threads leave them as they found them, and a plot written to a file draws its text the
same way whatever another figure left behind."""

from __future__ import annotations

import threading
from pathlib import Path

import matplotlib as mpl

from surmesure.console import charts
from surmesure.segment.reports import plot_overlap


def test_charts_drawn_at_once_on_threads_leave_the_settings_as_found() -> None:
    before = dict(mpl.rcParams)
    failures: list[BaseException] = []

    def draw(thread: int) -> None:
        try:
            for i in range(12):  # new data each time, so the charts' memory draws each
                svg = charts.bar_chart(["a", "b"], {"s": [1.0 + i + 100 * thread, 2.0]}, label="x")
                assert "<text" in svg  # text stays text on the console's pages
        except BaseException as error:  # the main thread reports it
            failures.append(error)

    threads = [threading.Thread(target=draw, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert mpl.rcParams["svg.fonttype"] == before["svg.fonttype"]
    assert mpl.rcParams["svg.hashsalt"] == before["svg.hashsalt"]


def test_a_plot_file_draws_its_text_as_outlines_whatever_was_left_set(tmp_path: Path) -> None:
    with mpl.rc_context({"svg.fonttype": "none"}):  # as another figure could leave it
        svg = plot_overlap(["a", "b"], [[3, 1], [1, 2]], tmp_path / "overlap.svg").read_text()
    assert "<text" not in svg and "<path" in svg
