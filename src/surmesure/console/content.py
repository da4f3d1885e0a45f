"""Content: the template library (variants, their rules, fields and fallbacks), and a preview
of any template for any person on each channel, every fallback shown with its reason
(:func:`surmesure.deliver.preview.preview`, the path a campaign's message takes). A preview
shows a person's data: it needs the ``read`` scope and is written to the audit log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from surmesure.clock import utcnow
from surmesure.console.session import page
from surmesure.console.web import render
from surmesure.console.words import WORDS, add
from surmesure.decide.content import CompiledTemplate
from surmesure.decide.library import library_for
from surmesure.deliver.preview import TemplatePreview, preview
from surmesure.errors import NotFound, SurmesureError
from surmesure.protect import audit
from surmesure.protect.users import User
from surmesure.store.engine import Store

router = APIRouter(prefix="/console/content", include_in_schema=False)
#: the longest person reference the search box takes
MAX_REF = 320

add(
    "en",
    {
        "templates": "Templates",
        "template": "Template",
        "placement": "Placement",
        "channel": "Channel",
        "format": "Format",
        "variants": "Variants",
        "variant": "Variant",
        "rule": "Rule",
        "subject": "Subject",
        "fields": "Fields",
        "reads": "Reads",
        "fallback_value": "Fallback",
        "preview": "Preview",
        "preview_for": "Preview for a person",
        "person_ref": "Person (id, or kind:value such as email:ana@example.org)",
        "show": "Show",
        "chosen_variant": "Variant chosen",
        "because": "because",
        "used": "Used",
        "fell_back": "Fell back",
        "reason": "Reason",
        "source": "Source",
        "reliability": "Reliability",
        "fallbacks_count": "fields fell back",
        "sms_segments": "SMS segments",
        "default_rule": "default (when no earlier rule holds)",
        "why_missing": "no value is known for this person",
        "why_unreliable": "the value is below the reliability threshold",
        "why_opted_out": "the person opted out of personalization on this channel",
        "why_unknown_person": "nobody known: neutral content",
        "page_of": "Person",
        "preview_email": "E-mail",
        "preview_sms": "SMS",
        "preview_web": "Web page",
        "no_templates": "No template in the library.",
    },
)
add(
    "fr",
    {
        "templates": "Modèles",
        "template": "Modèle",
        "placement": "Emplacement",
        "channel": "Canal",
        "format": "Format",
        "variants": "Variantes",
        "variant": "Variante",
        "rule": "Règle",
        "subject": "Objet",
        "fields": "Champs",
        "reads": "Lit",
        "fallback_value": "Valeur neutre",
        "preview": "Aperçu",
        "preview_for": "Aperçu pour une personne",
        "person_ref": "Personne (id, ou type:valeur comme email:ana@example.org)",
        "show": "Afficher",
        "chosen_variant": "Variante choisie",
        "because": "car",
        "used": "Utilisé",
        "fell_back": "Valeur neutre",
        "reason": "Raison",
        "source": "Source",
        "reliability": "Fiabilité",
        "fallbacks_count": "champs en valeur neutre",
        "sms_segments": "Segments SMS",
        "default_rule": "par défaut (aucune règle précédente ne s'applique)",
        "why_missing": "aucune valeur connue pour cette personne",
        "why_unreliable": "la valeur est sous le seuil de fiabilité",
        "why_opted_out": "la personne a refusé la personnalisation sur ce canal",
        "why_unknown_person": "personne inconnue : contenu neutre",
        "page_of": "Personne",
        "preview_email": "E-mail",
        "preview_sms": "SMS",
        "preview_web": "Page web",
        "no_templates": "Aucun modèle dans la bibliothèque.",
    },
)


def _templates(store: Store) -> dict[str, CompiledTemplate]:
    return dict(sorted(library_for(store.settings).by_name.items()))


def _variants(compiled: CompiledTemplate) -> list[dict[str, Any]]:
    rows = []
    for v in compiled.definition.variants:
        rule = []
        if v.segment:
            rule.append(f"segment {v.segment}")
        if v.when is not None:
            rule.append(v.when.model_dump_json(exclude_none=True))
        rows.append({"name": v.name, "rule": " + ".join(rule), "subject": v.subject or ""})
    return rows


@router.get("")
def templates(request: Request, user: User = Depends(page("read"))) -> HTMLResponse:
    store: Store = request.app.state.store
    words = WORDS[user.language]
    return render(
        request,
        "content.html",
        user=user,
        title=words["content"],
        templates=[c.definition for c in _templates(store).values()],
    )


@router.get("/{name}")
def template(
    name: str, request: Request, person: str = "", user: User = Depends(page("read"))
) -> HTMLResponse:
    store: Store = request.app.state.store
    words = WORDS[user.language]
    compiled = _templates(store).get(name)
    if compiled is None:
        raise NotFound(
            f"There is no template {name!r}.", field="template", hint="pick one in the list"
        )
    shown: TemplatePreview | None = None
    error: SurmesureError | None = None
    ref = person.strip()[:MAX_REF]
    if ref:
        try:
            shown = preview(store, name, ref, utcnow())
        except SurmesureError as exc:
            error = exc
        else:
            audit.record(
                store,
                user.actor,
                "console.content_preview",
                person_id=shown.person_id,
                detail={"template": name, "fallbacks": shown.fallbacks},
            )
    definition = compiled.definition
    return render(
        request,
        "content_template.html",
        user=user,
        status=200 if error is None else error.http_status,
        title=f"{words['template']} {name}",
        t=definition,
        variants=_variants(compiled),
        fields=[
            {
                "name": k,
                "reads": f"trait {f.trait}" if f.trait else f"metric {f.metric}",
                "fallback": f.fallback,
                "threshold": definition.threshold(k),
            }
            for k, f in definition.fields.items()
        ],
        person=ref,
        preview=shown,
        error=error,
    )
