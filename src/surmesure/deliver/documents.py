"""Campaign documents read, checked and kept as versions, the latest in force.

Every refusal is an :class:`InvalidInput` whose ``field`` is the path of the faulty place
(``channels.email.fields.first_name.trait``) and whose ``hint`` says what to write instead.
References are checked against what exists: the audience's segment must be saved, a channel's
``template`` must be in the template library, an ``mjml`` file must be readable, a
``topic`` must be a preference-centre topic and ``video.template`` a video template
(:mod:`surmesure.video`), saved as an absolute path. Saving an unchanged document adds no
version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.engine import Connection

from surmesure.collect.bounds import fault
from surmesure.decide.library import library_for
from surmesure.documents import error_path, read_document, read_text
from surmesure.domain.campaigns import CHANNEL_HINT, CampaignDefinition
from surmesure.domain.next_best_action import ModelFeatures
from surmesure.errors import InvalidInput, NotFound, SurmesureError
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.store.versions import add_version
from surmesure.unify.profile import decode_json

_HINTS = {
    "missing": "add this field",
    "extra_forbidden": "remove this field (check its spelling)",
    "string_pattern_mismatch": "use lowercase letters, digits and _ (e.g. spring_sale)",
    "literal_error": CHANNEL_HINT,
}


_MEMBERS = {"SegmentAudience"}


def parse(document: Any) -> CampaignDefinition:
    """A validated document; :class:`InvalidInput` naming the first faulty place."""
    if not isinstance(document, dict):
        raise InvalidInput(
            "A campaign document is a mapping.",
            field="(document)",
            hint="write name:, audience: and channels: at the top level",
        )
    found = fault(document)
    if found is not None:  # a NUL character, a 64-bit+ integer: what no store keeps
        place, reason = found
        raise InvalidInput(f"{place}: {reason}.", field=place, hint="correct the value there")
    try:
        return CampaignDefinition.model_validate(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        ctx = error.get("ctx") or {}
        # a union's member names itself in the location: not a place a person writes
        loc = tuple(
            p
            for p in error["loc"]
            if not (str(p).startswith("literal[") or p in _MEMBERS or p == "[key]")
        )
        path = error_path(loc)
        if ctx.get("field"):
            path = f"{path}.{ctx['field']}" if loc else str(ctx["field"])
        if error["type"] == "literal_error" and loc[:1] == ("audience",):
            hint = "write `audience: everyone` or `audience: {segment: NAME}`"
        elif error["type"] == "literal_error" and loc[:1] not in (("channels",), ("policy",)):
            hint = f"use one of: {ctx.get('expected', '')}"
        else:
            hint = str(ctx.get("hint") or _HINTS.get(error["type"], "see the README"))
        message = str(ctx.get("reason") or error["msg"]).removeprefix("Value error, ")
        raise InvalidInput(f"{path}: {message}.", field=path, hint=hint) from exc


def load_file(path: Path) -> CampaignDefinition:
    return parse(read_document(path))


def parse_text(text: str) -> CampaignDefinition:
    """A document sent as text (YAML, of which JSON is a part); :class:`InvalidInput` on
    ``(document)`` when it does not parse."""
    return parse(read_text(text, field="(document)"))


def without_files(definition: CampaignDefinition) -> CampaignDefinition:
    """``definition`` if it names no file: a document sent to the server (API, console)
    carries its MJML inline."""
    for channel, content in definition.channels.items():
        if content.mjml is not None:
            raise InvalidInput(
                f"channels.{channel}.mjml: a file path means nothing to the server.",
                field=f"channels.{channel}.mjml",
                hint="send the MJML text itself as `html`",
            )
    return definition


def check_references(conn: Connection, definition: CampaignDefinition, base: Path) -> None:
    """Refuse what the document names and does not exist (see the module docstring).
    ``base``: the folder relative MJML paths are read from."""
    segment = definition.segment
    if segment is not None:
        known = conn.execute(
            sa.select(sa.func.count())
            .select_from(schema.segments)
            .where(schema.segments.c.name == segment)
        ).scalar_one()
        if not known:
            raise InvalidInput(
                f"audience.segment: unknown segment {segment!r}.",
                field="audience.segment",
                hint="save it first (`surmesure segment save FILE`), or write `audience: everyone`",
            )
    topics = Store.of(conn).settings.preference_topics
    if definition.topic is not None and definition.topic not in topics:
        raise InvalidInput(
            f"topic: {definition.topic!r} is not a preference-centre topic.",
            field="topic",
            hint="use one of: " + ", ".join(topics),
        )
    library = None
    for channel, content in definition.channels.items():
        place = f"channels.{channel}"
        if content.template is not None:
            library = library or library_for(Store.of(conn).settings)
            try:
                template = library.named(content.template).definition
            except SurmesureError as exc:
                raise InvalidInput(
                    f"{place}.template: unknown template {content.template!r}.",
                    field=f"{place}.template",
                    hint=exc.hint or "give a template of the library",
                ) from exc
            if template.next_best_action is not None:  # its model picks the variants sent
                _check_model(conn, template.next_best_action)
        if content.mjml is not None:
            mjml_source(base, content.mjml, f"{place}.mjml")
    if definition.next_best_action is not None:
        _check_model(conn, definition.next_best_action)
    _check_video(conn, definition, base)


def _check_video(conn: Connection, definition: CampaignDefinition, base: Path) -> None:
    """The video template the campaign names, read (a film is shown only with one)."""
    if definition.video is None:
        if definition.prints_video or _library_prints_video(conn, definition):
            raise InvalidInput(
                "video: the campaign shows a film but names no video template.",
                field="video",
                hint="add `video: {template: FILE}` (a video template, relative to this document)",
            )
        return
    from surmesure.deliver.video import template_of

    try:
        template_of(with_video_path(definition, base))
    except InvalidInput as exc:
        if exc.field == "video.template":
            raise
        where = f" ({exc.field})" if exc.field else ""
        raise InvalidInput(
            f"video.template{where}: {exc.message}",
            field="video.template",
            hint=exc.hint or "correct the video template",
        ) from exc


def _library_prints_video(conn: Connection, definition: CampaignDefinition) -> bool:
    """Whether a library template of the campaign prints the film's link or poster (an MJML
    file's or an inline text's are read where the document is parsed)."""
    if not any(c.template is not None for c in definition.channels.values()):
        return False
    from surmesure.deliver.content import templates_of

    try:
        compiled = templates_of(definition, Store.of(conn).settings)
    except SurmesureError:  # refused where the templates are compiled, with its own words
        return False
    return any(t.prints_video_link for t in compiled.values())


def with_video_path(definition: CampaignDefinition, base: Path) -> CampaignDefinition:
    """``definition`` with its video template's path made absolute (read from ``base``)."""
    if definition.video is None or Path(definition.video.template).is_absolute():
        return definition
    path = (base / definition.video.template).resolve()
    return definition.model_copy(
        update={"video": definition.video.model_copy(update={"template": str(path)})}
    )


def _check_model(conn: Connection, spec: ModelFeatures) -> None:
    """The saved model ``spec`` names, against the document's mapping."""
    from surmesure.decide import action_models, next_best

    next_best.check(spec, action_models.load(conn, spec.model))


def mjml_source(base: Path, name: str, place: str) -> str:
    """The text of an MJML file (relative to ``base``); refused with ``place`` when absent."""
    path = Path(name) if Path(name).is_absolute() else base / name
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(
            f"{place}: cannot read {path} ({exc.strerror}).",
            field=place,
            hint="give the path of an MJML file, relative to the campaign document",
        ) from exc
    if not text.lstrip().startswith("<mjml"):
        raise InvalidInput(
            f"{place}: {path} is not an MJML document.",
            field=place,
            hint="an MJML file starts with <mjml>",
        )
    return text


def inline_mjml(definition: CampaignDefinition, base: Path) -> CampaignDefinition:
    """``definition`` with each ``mjml`` path replaced by the file's text in ``html``, so the
    saved version carries what was sent whatever becomes of the file, and its video
    template's path made absolute."""
    channels = {}
    for channel, content in definition.channels.items():
        if content.mjml is not None:
            text = mjml_source(base, content.mjml, f"channels.{channel}.mjml")
            content = content.model_copy(update={"mjml": None, "html": text})
        channels[channel] = content
    return with_video_path(definition, base).model_copy(update={"channels": channels})


# -- versions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Saved:
    name: str
    version: int
    changed: bool


def get(conn: Connection, name: str) -> tuple[CampaignDefinition, int]:
    """The campaign in force and its version; :class:`NotFound` when none has this name."""
    c, v = schema.campaigns, schema.campaign_versions
    row = conn.execute(
        sa.select(v.c.definition, v.c.version)
        .select_from(c.join(v, sa.and_(v.c.name == c.c.name, v.c.version == c.c.version)))
        .where(c.c.name == name)
    ).first()
    if row is None:
        raise NotFound(
            f"There is no campaign {name!r}.",
            field="NAME",
            hint="`surmesure campaign save FILE` saves one; check the name",
        )
    return parse(decode_json(row.definition)), int(row.version)


def save(
    store: Store, definition: CampaignDefinition, now: datetime, base: Path = Path(".")
) -> Saved:
    """Check the references and store ``definition`` as a new version when it differs from
    the one in force. All or nothing."""
    c, v = schema.campaigns, schema.campaign_versions
    definition = inline_mjml(definition, base)
    with store.begin() as conn:
        check_references(conn, definition, base)
        current = conn.execute(sa.select(c.c.version).where(c.c.name == definition.name)).first()
        if current is not None:
            saved, version = get(conn, definition.name)
            if saved.document() == definition.document():
                return Saved(definition.name, version, changed=False)
        version = add_version(
            conn,
            c,
            v,
            definition.name,
            definition.document(),
            now,
            None if current is None else int(current[0]),
        )
    return Saved(definition.name, version, changed=True)
