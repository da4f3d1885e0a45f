"""People: find a person by any identifier, see everything known about them and why they got
what they got; an admin exports or erases them.

Every page showing a person's data writes its audit row (``person.search``, ``person.show``,
``person.timeline``, ``person.export``, ``person.erase``) with the signed-in user as actor.
The search is a form sent by POST, so the identifier typed never lands in an address, a
browser's history or an access log. Export and erasure are the commands' own
(:func:`~surmesure.protect.export.export_person`, :func:`~surmesure.protect.erase.erase_person`).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from surmesure.clock import utcnow
from surmesure.console.people_view import PersonView, person_view
from surmesure.console.session import form_of, page
from surmesure.console.web import fragment, render, see_other
from surmesure.console.words import WORDS, add
from surmesure.errors import InvalidInput
from surmesure.protect import audit
from surmesure.protect.erase import erase_person
from surmesure.protect.export import export_person
from surmesure.protect.users import User
from surmesure.store.engine import Store
from surmesure.unify.profile import MAX_ID, existing_root, root_of
from surmesure.unify.search import search
from surmesure.unify.timeline import PAGE, timeline

router = APIRouter(prefix="/console/people", include_in_schema=False)
MAX_WHOLE = 10**12

EN = {
    "people_search": "Find a person",
    "search_label": "Identifier",
    "search_hint": "An e-mail address, a phone number, a customer id, a loyalty card, an "
    "anonymous id or a person id.",
    "search": "Search",
    "nobody": "Nobody is known by this identifier.",
    "several": "Several people answer to this identifier.",
    "found_by": "Found by",
    "person": "Person",
    "kind_person_id": "Person id",
    "kind_customer_id": "Customer id",
    "kind_loyalty_card": "Loyalty card",
    "kind_email": "E-mail",
    "kind_phone": "Phone",
    "kind_anonymous_id": "Anonymous id",
    "identifiers": "Identifiers",
    "kind": "Kind",
    "source": "Source",
    "first_seen": "First seen",
    "by_claim": "by claim only",
    "traits": "Traits",
    "trait": "Trait",
    "reliability": "Reliability",
    "effective": "Effective",
    "observed": "Observed",
    "in_templates": "In templates",
    "usable_until": "until",
    "not_usable": "no, too unreliable",
    "competing": "Competing values",
    "activity": "Activity",
    "orders": "Orders",
    "returns": "Returns",
    "events": "Events",
    "survey_answers": "Survey answers",
    "channel_activity": "Message activity",
    "consents_title": "Consents",
    "preferences_title": "Contact preferences",
    "topics": "Topics",
    "topic_in": "in",
    "topic_out": "left",
    "frequency_pref": "How often",
    "freq_as_it_comes": "as it comes",
    "freq_weekly": "at most weekly",
    "freq_monthly": "at most monthly",
    "paused_until": "Paused until",
    "not_paused": "not paused",
    "preference_history": "History",
    "merges_title": "Merge history",
    "merge_absorbed": "Absorbed",
    "merge_into": "Into",
    "merge_via": "Linked by",
    "merge_basis": "Why it was allowed",
    "merged_at": "Merged",
    "undone_at": "Undone",
    "purpose": "Purpose",
    "channel": "Channel",
    "granted": "Granted",
    "yes": "yes",
    "no": "no",
    "recorded": "Recorded",
    "consent_history": "History",
    "entered": "Entered",
    "live_only": "discovered",
    "metrics": "Derived metrics",
    "computed": "Computed",
    "rfm": "RFM",
    "clv": "Lifetime value",
    "engagement": "Engagement",
    "appetence": "Channel appetence",
    "satisfaction": "Satisfaction",
    "affinity": "Affinities",
    "rfm_segment": "RFM segment",
    "recency_days": "Days since last order",
    "frequency": "Orders",
    "monetary": "Spent",
    "r_score": "R score",
    "f_score": "F score",
    "m_score": "M score",
    "expected_value": "Expected value (CLV)",
    "expected_purchases": "Expected purchases",
    "p_alive": "Probability alive",
    "p_purchase_30d": "Purchase within 30 days",
    "p_purchase_90d": "Purchase within 90 days",
    "engagement_score": "Engagement score",
    "relational_engagement": "Relational",
    "transactional_engagement": "Transactional",
    "open_rate": "Open rate",
    "click_rate": "Click rate",
    "upsell_potential": "Up-sell potential",
    "best_channel": "Best channel",
    "appetence_email": "E-mail",
    "appetence_sms": "SMS",
    "appetence_phone": "Phone",
    "appetence_paper": "Paper",
    "appetence_web": "Web",
    "nps_last": "Last NPS answer",
    "nps_group": "NPS group",
    "csat_satisfied_share": "Satisfied (CSAT)",
    "ces_mean": "Mean effort (CES)",
    "top_category_1": "First category",
    "top_category_2": "Second category",
    "top_category_3": "Third category",
    "preferred_store_id": "Preferred store",
    "preferred_store_km": "Distance to it (km)",
    "timeline": "Timeline",
    "when": "When",
    "what": "What",
    "reference": "Reference",
    "amount": "Amount",
    "more": "More",
    "event": "Event",
    "order": "Order",
    "return": "Return",
    "decisions": "Decisions",
    "placement": "Placement",
    "decided": "Decided",
    "reasons": "Why",
    "full_explanation": "Full explanation",
    "journeys": "Journeys",
    "journey": "Journey",
    "step": "Step",
    "status": "Status",
    "last_move": "Last move",
    "nothing": "Nothing recorded.",
    "admin_acts": "Access and erasure",
    "export_json": "Export everything (JSON)",
    "erase_person": "Erase this person",
    "erase_title": "Erase a person",
    "erase_warning": "Erasure deletes every row about this person (their orders are kept for "
    "sales totals, detached from them), suppresses their identifiers so that nothing brings "
    "them back, and cannot be undone.",
    "confirm_label": "Type the person id to confirm",
    "reason": "Reason",
    "erase_button": "Erase for ever",
    "cancel": "Cancel",
    "confirm_mismatch": "The number typed is not this person's id: nothing was erased.",
    "erased": "Person erased",
    "rows_deleted": "rows deleted",
    "identifiers_suppressed": "identifiers suppressed",
}
FR = {
    "people_search": "Trouver une personne",
    "search_label": "Identifiant",
    "search_hint": "Une adresse e-mail, un numéro de téléphone, un identifiant client, une "
    "carte de fidélité, un identifiant anonyme ou un numéro de personne.",
    "search": "Chercher",
    "nobody": "Personne n'est connu sous cet identifiant.",
    "several": "Plusieurs personnes répondent à cet identifiant.",
    "found_by": "Trouvée par",
    "person": "Personne",
    "kind_person_id": "Numéro de personne",
    "kind_customer_id": "Identifiant client",
    "kind_loyalty_card": "Carte de fidélité",
    "kind_email": "E-mail",
    "kind_phone": "Téléphone",
    "kind_anonymous_id": "Identifiant anonyme",
    "identifiers": "Identifiants",
    "kind": "Type",
    "source": "Source",
    "first_seen": "Vu la première fois",
    "by_claim": "revendiqué seulement",
    "traits": "Attributs",
    "trait": "Attribut",
    "reliability": "Fiabilité",
    "effective": "Effective",
    "observed": "Observé",
    "in_templates": "Dans les modèles",
    "usable_until": "jusqu'au",
    "not_usable": "non, trop peu fiable",
    "competing": "Valeurs concurrentes",
    "activity": "Activité",
    "orders": "Commandes",
    "returns": "Retours",
    "events": "Événements",
    "survey_answers": "Réponses aux enquêtes",
    "channel_activity": "Activité des messages",
    "consents_title": "Consentements",
    "preferences_title": "Préférences de contact",
    "topics": "Thèmes",
    "topic_in": "inscrit",
    "topic_out": "désinscrit",
    "frequency_pref": "Fréquence",
    "freq_as_it_comes": "au fil de l'eau",
    "freq_weekly": "au plus chaque semaine",
    "freq_monthly": "au plus chaque mois",
    "paused_until": "En pause jusqu'au",
    "not_paused": "pas de pause",
    "preference_history": "Historique",
    "merges_title": "Historique des fusions",
    "merge_absorbed": "Absorbé",
    "merge_into": "Dans",
    "merge_via": "Lié par",
    "merge_basis": "Pourquoi elle a été permise",
    "merged_at": "Fusionné",
    "undone_at": "Annulé",
    "purpose": "Finalité",
    "channel": "Canal",
    "granted": "Accordé",
    "yes": "oui",
    "no": "non",
    "recorded": "Enregistré",
    "consent_history": "Historique",
    "entered": "Entré",
    "live_only": "découvert",
    "metrics": "Indicateurs calculés",
    "computed": "Calculé",
    "rfm": "RFM",
    "clv": "Valeur vie client",
    "engagement": "Engagement",
    "appetence": "Appétence par canal",
    "satisfaction": "Satisfaction",
    "affinity": "Affinités",
    "rfm_segment": "Segment RFM",
    "recency_days": "Jours depuis la dernière commande",
    "frequency": "Commandes",
    "monetary": "Dépensé",
    "r_score": "Score R",
    "f_score": "Score F",
    "m_score": "Score M",
    "expected_value": "Valeur attendue (CLV)",
    "expected_purchases": "Achats attendus",
    "p_alive": "Probabilité d'être actif",
    "p_purchase_30d": "Achat sous 30 jours",
    "p_purchase_90d": "Achat sous 90 jours",
    "engagement_score": "Score d'engagement",
    "relational_engagement": "Relationnel",
    "transactional_engagement": "Transactionnel",
    "open_rate": "Taux d'ouverture",
    "click_rate": "Taux de clic",
    "upsell_potential": "Potentiel de montée en gamme",
    "best_channel": "Meilleur canal",
    "appetence_email": "E-mail",
    "appetence_sms": "SMS",
    "appetence_phone": "Téléphone",
    "appetence_paper": "Courrier",
    "appetence_web": "Web",
    "nps_last": "Dernière réponse NPS",
    "nps_group": "Groupe NPS",
    "csat_satisfied_share": "Satisfait (CSAT)",
    "ces_mean": "Effort moyen (CES)",
    "top_category_1": "Première catégorie",
    "top_category_2": "Deuxième catégorie",
    "top_category_3": "Troisième catégorie",
    "preferred_store_id": "Magasin préféré",
    "preferred_store_km": "Distance (km)",
    "timeline": "Chronologie",
    "when": "Quand",
    "what": "Quoi",
    "reference": "Référence",
    "amount": "Montant",
    "more": "Plus",
    "event": "Événement",
    "order": "Commande",
    "return": "Retour",
    "decisions": "Décisions",
    "placement": "Emplacement",
    "decided": "Décidée",
    "reasons": "Pourquoi",
    "full_explanation": "Explication complète",
    "journeys": "Parcours",
    "journey": "Parcours",
    "step": "Étape",
    "status": "État",
    "last_move": "Dernier mouvement",
    "nothing": "Rien d'enregistré.",
    "admin_acts": "Accès et effacement",
    "export_json": "Tout exporter (JSON)",
    "erase_person": "Effacer cette personne",
    "erase_title": "Effacer une personne",
    "erase_warning": "L'effacement supprime toutes les lignes sur cette personne (ses commandes "
    "sont gardées pour les totaux de ventes, détachées d'elle), met ses identifiants en liste "
    "de suppression pour que rien ne la fasse revenir, et ne peut pas être annulé.",
    "confirm_label": "Tapez le numéro de la personne pour confirmer",
    "reason": "Motif",
    "erase_button": "Effacer définitivement",
    "cancel": "Annuler",
    "confirm_mismatch": "Le numéro tapé n'est pas celui de cette personne : rien n'a été effacé.",
    "erased": "Personne effacée",
    "rows_deleted": "lignes supprimées",
    "identifiers_suppressed": "identifiants mis en liste de suppression",
}
add("en", EN)
add("fr", FR)


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _person_id(text: str) -> int:
    """A person id from an address; :class:`InvalidInput` naming the fix otherwise."""
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_ID:
        raise InvalidInput(
            f"{text[:40]!r} is not a person id.",
            field="person_id",
            hint="open a person from the search on the People page",
        )
    return int(text)


def _whole(text: str | None, field: str = "offset") -> int:
    """A count or a position in the timeline from an address (none: 0)."""
    if text is None or text == "":
        return 0
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_WHOLE:
        raise InvalidInput(
            f"{text[:40]!r} is not a whole number.",
            field=field,
            hint=f"use a whole number from 0 to {MAX_WHOLE:,}",
        )
    return int(text)


def _form_page(
    request: Request, user: User, template: str, title: str, status: int, **context: object
) -> HTMLResponse:
    """A page of this section with its form (``context``: what the template shows)."""
    words = WORDS[user.language]
    return render(request, template, user=user, status=status, title=words[title], **context)


def _search_page(
    request: Request, user: User, *, query: str = "", error: str = "", status: int = 200,
    matches: object = None, erased: object = None,
) -> HTMLResponse:  # fmt: skip
    return _form_page(
        request, user, "people_search.html", "people", status,
        query=query, error=error, matches=matches, erased=erased,
    )  # fmt: skip


@router.get("")
def people(
    request: Request, erased: str | None = None, deleted: str | None = None,
    suppressed: str | None = None, user: User = Depends(page("read")),
) -> HTMLResponse:  # fmt: skip
    done = None
    if erased is not None:
        gone = _person_id(erased)
        with _store(request).connect() as conn:  # an address cannot tell of an erasure not made
            if root_of(conn, gone) is None:
                done = {"person_id": gone, "deleted": _whole(deleted, "deleted"),
                        "suppressed": _whole(suppressed, "suppressed")}  # fmt: skip
    return _search_page(request, user, erased=done)


@router.post("")
async def find(request: Request, user: User = Depends(page("read"))) -> Response:
    typed = (await form_of(request)).get("q", "")
    store = _store(request)
    try:
        matches = await run_in_threadpool(search, store, typed)
    except InvalidInput as exc:
        return _search_page(request, user, query=typed, error=exc.message, status=400)
    only = matches[0].person_id if len(matches) == 1 else None
    await run_in_threadpool(
        audit.record, store, user.actor, "person.search", person_id=only,
        detail={"found": len(matches)},
    )  # fmt: skip
    if only is not None:
        return see_other(f"/console/people/{only}")
    return _search_page(request, user, query=typed, matches=matches)


def _place(person_id: str, offset: str | None = None) -> tuple[int, int]:
    """The person an address names, and where their timeline starts."""
    return _person_id(person_id), _whole(offset)


@router.get("/{person_id}")
def person(
    request: Request, user: User = Depends(page("read")), place: tuple[int, int] = Depends(_place)
) -> Response:
    wanted, start = place
    store = _store(request)
    settings = request.app.state.settings
    serving = getattr(request.app.state, "serving", None)
    if serving is not None:
        serving.flush()  # decisions are written behind: the page shows the latest
    view: PersonView = person_view(
        store, wanted, utcnow(), decision_days=settings.decision_log_days, offset=start
    )
    found = view.profile.person_id
    if found != wanted:  # an absorbed id: the person it was merged into
        return see_other(f"/console/people/{found}")
    audit.record(store, user.actor, "person.show", person_id=found, detail={"via": "console"})
    return render(
        request,
        "person.html",
        user=user,
        title=f"{WORDS[user.language]['person']} {found}",
        v=view,
        p=view.profile,
        offset=start,
        page_size=PAGE,
    )


@router.get("/{person_id}/timeline")
def person_timeline(
    request: Request, user: User = Depends(page("read")), place: tuple[int, int] = Depends(_place)
) -> Response:
    wanted, start = place
    if "hx-request" not in request.headers:
        return see_other(f"/console/people/{wanted}?offset={start}#timeline")
    store = _store(request)
    with store.connect() as conn:  # an absorbed id: its person's moments; none: no audit row
        person_id = existing_root(conn, wanted, "open a person from the search on the People page")
    found, more = timeline(store, person_id, offset=start, limit=PAGE)
    audit.record(
        store, user.actor, "person.timeline", person_id=person_id, detail={"offset": start}
    )
    return fragment(
        request,
        "people_timeline.html",
        user=user,
        person_id=person_id,
        moments=found,
        more=more,
        next_offset=start + PAGE,
    )


@router.post("/{person_id}/export")
def export(request: Request, person_id: str, user: User = Depends(page("admin"))) -> Response:
    wanted = _person_id(person_id)
    store = _store(request)
    done = export_person(store, str(wanted))
    audit.record(
        store, user.actor, "person.export", person_id=done.person_id,
        detail={"rows": sum(done.counts().values()), "via": "console"},
    )  # fmt: skip
    return Response(
        done.to_json(),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="person-{done.person_id}.json"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/{person_id}/erase")
def erase_form(request: Request, person_id: str, user: User = Depends(page("admin"))) -> Response:
    return _erase_page(request, user, _person_id(person_id), "", "", "erasure requested", 200)


def _erase_page(
    request: Request, user: User, person_id: int, error: str, typed: str, reason: str,
    status: int,
) -> HTMLResponse:  # fmt: skip
    context = {"person_id": person_id, "error": error, "typed": typed, "reason": reason}
    return _form_page(request, user, "person_erase.html", "erase_title", status, **context)


@router.post("/{person_id}/erase")
async def erase(request: Request, person_id: str, user: User = Depends(page("admin"))) -> Response:
    wanted = _person_id(person_id)
    form = await form_of(request)
    typed, reason = form.get("confirm", "").strip(), form.get("reason", "").strip()[:200]
    if typed != str(wanted):
        mismatch = WORDS[user.language]["confirm_mismatch"]
        return _erase_page(request, user, wanted, mismatch, typed[:40], reason, 400)
    store = _store(request)
    done = await run_in_threadpool(
        lambda: erase_person(store, str(wanted), confirmed=True, reason=reason or "erasure")
    )
    deleted = sum(done.deleted.values())
    await run_in_threadpool(
        audit.record, store, user.actor, "person.erase", person_id=done.person_id,
        detail={"deleted": deleted, "via": "console"},
    )  # fmt: skip
    return see_other(
        f"/console/people?erased={done.person_id}&deleted={deleted}&suppressed={done.suppressed}"
    )
