"""Opens and clicks of an e-mail sent through a real SMTP server: the pixel and the rewritten
links record the person's channel activity (for the person an absorbed id was merged into),
a click lands on the link's target, and a tampered or foreign token records nothing and
redirects nowhere."""

from __future__ import annotations

import re

import httpx
from api_helpers import serving
from people_rows import activity_rows, add_people
from smtp_sink import sent_html

from surmesure.deliver.channel import Message
from surmesure.deliver.tracking import track
from surmesure.store import Store

SECRET = "a-test-secret-of-some-length"
PORT = 18457
TARGET = "https://shop.example.com/o/1?a=1&b=2"
MJML = (
    "<mjml><mj-body><mj-section><mj-column><mj-text>Bonjour</mj-text>"
    f'<mj-button href="{TARGET.replace("&", "&amp;")}">Voir</mj-button>'
    "</mj-column></mj-section></mj-body></mjml>"
)


def _html_sent(url: str) -> str:
    message = Message(
        "m1",
        "email",
        "bo@example.org",
        "Bonjour",
        "Offres",
        html=MJML,
        person_id=8,
        headers={"X-Campaign": "spring"},
    )
    return sent_html(message, url, SECRET, PORT)


def test_opens_and_clicks_are_the_persons_activity(store: Store) -> None:
    add_people(store, (7, None), (8, 7))
    with serving(store, secret_key=SECRET) as (url, _app):
        html = _html_sent(url)
        assert TARGET not in html and "/u/email/" not in html
        [click] = re.findall(rf'href="({re.escape(url)}/t/c/[^"]+)"', html)
        [pixel] = re.findall(rf'src="({re.escape(url)}/t/o/[^"]+\.gif)"', html)
        image = httpx.get(pixel)
        assert image.status_code == 200 and image.headers["content-type"] == "image/gif"
        landing = httpx.get(click, follow_redirects=False)
        assert landing.status_code == 302 and landing.headers["location"] == TARGET
        tampered = click[:-3] + ("AAA" if not click.endswith("AAA") else "BBB")
        assert httpx.get(tampered, follow_redirects=False).status_code == 404
        assert httpx.get(pixel.replace(".gif", "x.gif")).status_code == 200  # still an image
        foreign = track(
            '<a href="https://evil.example/">x</a>',
            7,
            None,
            public_url=url,
            secret="another-secret-of-some-length",
        )
        [evil] = re.findall(r'href="([^"]+)"', foreign)
        assert httpx.get(evil, follow_redirects=False).status_code == 404
    assert activity_rows(store, "person_id", "channel", "kind", "campaign", "url") == [
        (7, "email", "opened", "spring", None),
        (7, "email", "clicked", "spring", TARGET),
    ]
