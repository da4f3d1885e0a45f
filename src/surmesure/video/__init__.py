"""Personalized video: a short film made for each person from their data, with the neutral
version wherever data is missing or unreliable.

A video template (:mod:`surmesure.video.template`) lists scenes; each person's film is planned
from what is known of them (:mod:`surmesure.video.people`, :mod:`surmesure.video.plan`), drawn,
spoken and encoded scene by scene, each clip and each film named by the hash of its content so
identical ones are made once (:mod:`surmesure.video.render`).

The API::

    template = load_template(Path("year_in_review.yaml"))
    film = render_person(store, template, person_id, settings=settings)
    films = render_many(store, template, person_ids, settings=settings, on_progress=...)
"""

from surmesure.video.render import Film, render_many, render_person
from surmesure.video.template import VideoTemplate, load_template, parse_template

__all__ = [
    "Film",
    "VideoTemplate",
    "load_template",
    "parse_template",
    "render_many",
    "render_person",
]
