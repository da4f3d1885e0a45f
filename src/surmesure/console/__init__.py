"""The console: server-rendered pages over the same services the CLI and API call.

Each section is a module with its own ``router`` (signing in and the home page:
:mod:`surmesure.console.home`); :func:`include` adds them to the app. A page needs a signed-in
user whose role allows it (:func:`surmesure.console.session.page`); every form carries a CSRF
token; every view of a person's data is written to the audit log.
"""

from __future__ import annotations

import importlib
import threading

from fastapi import FastAPI

#: the sections' modules, each with a ``router``
SECTIONS = (
    "home",
    "journeys",
    "people",
    "content",
    "campaigns",
    "segments",
    "data",
    "experiments",
)


def include(app: FastAPI) -> None:
    """Add the console's routes and its per-process state to ``app``."""
    from surmesure.console.cache import Timed
    from surmesure.console.home import FigureCache
    from surmesure.protect.users import SignInLimits

    app.state.console_limits = SignInLimits()
    app.state.console_figures = FigureCache()
    app.state.console_cache = Timed()
    for name in SECTIONS:
        module = importlib.import_module(f"surmesure.console.{name}")
        app.include_router(module.router)
    app.state.console_warming = threading.Thread(target=_warm_charts, daemon=True)
    app.state.console_warming.start()


def _warm_charts() -> None:
    """Draw one small chart off the request path: Matplotlib's first drawing in a process
    loads its fonts (a few hundred ms), which the first chart a user opens would wait for."""
    from surmesure.console.charts import line_chart

    line_chart(["a", "b"], {"warm": [0.0, 1.0]}, label="warm")
