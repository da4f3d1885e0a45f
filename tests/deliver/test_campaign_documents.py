"""Campaign documents: each mistake is refused with its place and a fix; saved documents are
versioned (an unchanged one adds no version)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from campaign_world import T0, document

from surmesure.deliver import documents, service
from surmesure.errors import InvalidInput, NotFound
from surmesure.store import Store


@pytest.mark.parametrize(
    ("change", "field", "hint"),
    [
        ({"colour": "red"}, "colour", "remove this field"),
        ({"name": "Spring Sale"}, "name", "lowercase"),
        ({"audience": "all"}, "audience", "audience: everyone"),
        ({"channels": {"pigeon": {"text": "hi"}}}, "channels.pigeon", "email, sms"),
        (
            {"policy": {"order": ["sms"]}, "channels": {"email": {"text": "x"}}},
            "policy.order[0]",
            "sms",
        ),
        (
            {"channels": {"email": {"text": "x", "template": "welcome"}}},
            "channels.email.template",
            "template",
        ),
        ({"channels": {"email": {"subject": "no body"}}}, "channels.email.text", "text"),
        (
            {"channels": {"email": {"text": "x", "fields": {"a": {"fallback": ""}}}}},
            "channels.email.fields.a.trait",
            "give `trait: NAME`",
        ),
        (
            {"channels": {"email": {"text": "x", "fields": {"a": {"metric": "tier"}}}}},
            "channels.email.fields.a.metric",
            "clv_tier",
        ),
        ({"control": 1.5}, "control", ""),
    ],
)
def test_a_faulty_document_names_the_place_and_the_fix(
    change: dict[str, Any], field: str, hint: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        documents.parse(document(**change))
    assert caught.value.field == field, caught.value
    assert hint in (caught.value.hint or ""), caught.value.hint


def _file(tmp_path: Path, **change: Any) -> Path:
    path = tmp_path / "spring.yaml"
    if "channels" in change:
        change.setdefault("policy", {"order": list(change["channels"])})
    path.write_text(yaml.safe_dump(document(**change)), encoding="utf-8")
    return path


def test_unknown_references_are_refused_before_anything_is_saved(
    store: Store, tmp_path: Path
) -> None:
    cases = [
        ({"audience": {"segment": "nobody_saved"}}, "audience.segment", "segment save"),
        ({"topic": "gardening"}, "topic", "offers"),
        (
            {"channels": {"email": {"template": "no_such_template"}}},
            "channels.email.template",
            "welcome",
        ),
        (
            {"channels": {"email": {"text": "x", "mjml": "missing.mjml"}}},
            "channels.email.mjml",
            "MJML",
        ),
    ]
    for change, field, hint in cases:
        path = _file(tmp_path, **change)
        with pytest.raises(InvalidInput) as caught:
            service.validate(store, path)
        assert caught.value.field == field and hint in (caught.value.hint or ""), caught.value
        with pytest.raises(InvalidInput):
            service.save_file(store, path, T0)
    with store.connect() as conn, pytest.raises(NotFound):
        documents.get(conn, "spring")


def test_a_template_that_does_not_compile_is_refused_by_validate(
    store: Store, tmp_path: Path
) -> None:
    path = _file(tmp_path, channels={"email": {"text": "Hello {{ person.first_name "}})
    with pytest.raises(InvalidInput) as caught:
        service.validate(store, path)
    assert "spring_email" in str(caught.value)


def test_saving_keeps_versions_and_inlines_the_mjml_file(store: Store, tmp_path: Path) -> None:
    (tmp_path / "body.mjml").write_text(
        "<mjml><mj-body><mj-text>Hi {{ person.first_name }}</mj-text></mj-body></mjml>"
    )
    email = {"text": "Hi", "mjml": "body.mjml", "fields": {"first_name": {"trait": "first_name"}}}
    path = _file(tmp_path, channels={"email": email})
    first = service.save_file(store, path, T0)
    again = service.save_file(store, path, T0)
    changed = service.save_file(store, _file(tmp_path, channels={"email": email}, control=0.1), T0)
    assert (first.version, first.changed) == (1, True)
    assert (again.version, again.changed) == (1, False)
    assert (changed.version, changed.changed) == (2, True)
    (tmp_path / "body.mjml").unlink()  # what was saved does not depend on the file any more
    with store.connect() as conn:
        saved, version = documents.get(conn, "spring")
    assert version == 2 and saved.control == 0.1
    assert saved.channels["email"].mjml is None
    assert saved.channels["email"].html.startswith("<mjml>")
