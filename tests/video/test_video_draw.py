"""Text on a film's pictures: a character the font has no glyph for (an emoji) is left out, not
drawn as a blank box."""

from __future__ import annotations

import numpy as np

from surmesure.video.draw import draw_scene, drawable


def _picture(title: str) -> np.ndarray:
    spec = {"size": (640, 360), "background": {"kind": "solid", "colour": "#203040"},
            "kind": "chart", "title": title, "text": "Merci 🎉 Camille"}  # fmt: skip
    return np.asarray(draw_scene(spec))


def test_an_emoji_is_left_out_of_the_picture() -> None:
    assert drawable("Bonjour Camille 🎉🎁 !") == "Bonjour Camille !"
    assert drawable("Été à Genève ❤") == "Été à Genève ❤"  # the font draws the heart
    assert drawable("🎉") == ""
    with_emoji, without = _picture("Votre année 🎉"), _picture("Votre année")
    assert np.array_equal(with_emoji, without)
    assert not np.array_equal(without, _picture("Votre mois"))  # the text is drawn
