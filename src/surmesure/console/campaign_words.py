"""The campaigns section's words in each language, and the document a new campaign starts
from."""

from __future__ import annotations

from surmesure.console.words import add

#: what the new-campaign form holds at first: a campaign to complete
EXAMPLE = """\
name: spring_sale
description: Spring sale, 20% off
audience: everyone            # or {segment: NAME}
topic: offers
channels:
  email:
    subject: "{{ person.first_name or 'Hello' }}, spring is here"
    text: "Dear {{ person.first_name or 'customer' }}, -20% this week."
    fields: {first_name: {trait: first_name, fallback: ""}}
policy: {order: [email]}
control: 0.1                  # share held out as a control group (receives nothing)
costs: {email: 0.001}
"""

add(
    "en",
    {
        "new_campaign": "New campaign",
        "campaign": "Campaign",
        "version": "Version",
        "saved_at": "Saved",
        "outbox": "Outbox",
        "no_campaigns": "No campaign yet.",
        "document": "Campaign document (YAML or JSON)",
        "upload": "Or load a file into the document",
        "load_file": "Load",
        "validate": "Validate",
        "save": "Save",
        "valid_document": "The document is valid: campaign",
        "invalid_document": "The document is not valid",
        "launch": "Launch",
        "pause": "Pause",
        "resume": "Resume",
        "is_paused": "Paused: no message leaves until it is resumed.",
        "sending": "Sending, launched {at}: this page refreshes until the messages have left.",
        "launched": "Launched {at}: {sent} sent, {failed} not sent.",
        "launch_failed": "The send launched {at} stopped: {error}. Launch again to send what "
        "is still planned.",
        "status": "Status",
        "messages": "Messages",
        "by_channel": "By channel",
        "why_not_sent": "Why not sent",
        "cost": "Cost",
        "results": "Results",
        "audience": "Audience",
        "control_share": "Control group",
        "everyone": "everyone identified",
        "treated": "Treated",
        "control": "Control",
        "global_holdout": "Global holdout",
        "arm": "Group",
        "people_n": "People",
        "sent": "Sent",
        "converted": "Converted",
        "conversion_rate": "Conversion",
        "revenue_per_person": "Revenue per person",
        "lift": "Lift (points)",
        "interval": "95% interval",
        "p_value": "p-value",
        "all": "all",
        "conversion_by_arm": "Conversion rate (%), treated and control",
        "lift_by_channel": "Lift in conversion by channel (points, 95% interval)",
        "lift_by_segment": "Lift in conversion by segment (points, 95% interval)",
        "films": "Films",
        "films_funnel": "People at each stage of their film",
        "film_pages_opened": "opened the page",
        "film_views": "started the film",
        "film_quarter": "played {q} %",
        "film_completed": "played it to the end",
        "film_clicked": "followed a button",
        "film_completion": "Completion rate (of those who started)",
        "film_clicks": "Clicks",
        "lift_points": "Lift (points)",
        "break_down_by": "Break down by segment",
        "apply": "Apply",
        "attribution": "Attribution window (days)",
        "excluded": "Excluded while planning",
    },
)
add(
    "fr",
    {
        "new_campaign": "Nouvelle campagne",
        "campaign": "Campagne",
        "version": "Version",
        "saved_at": "Enregistrée",
        "outbox": "Messages",
        "no_campaigns": "Aucune campagne pour l'instant.",
        "document": "Document de campagne (YAML ou JSON)",
        "upload": "Ou charger un fichier dans le document",
        "load_file": "Charger",
        "validate": "Valider",
        "save": "Enregistrer",
        "valid_document": "Le document est valide : campagne",
        "invalid_document": "Le document n'est pas valide",
        "launch": "Lancer",
        "pause": "Mettre en pause",
        "resume": "Reprendre",
        "is_paused": "En pause : aucun message ne part avant la reprise.",
        "sending": "Envoi en cours, lancé le {at} : cette page se met à jour jusqu'au départ "
        "des messages.",
        "launched": "Lancé le {at} : {sent} envoyés, {failed} non envoyés.",
        "launch_failed": "L'envoi lancé le {at} s'est arrêté : {error}. Lancez de nouveau pour "
        "envoyer ce qui reste prévu.",
        "status": "État",
        "messages": "Messages",
        "by_channel": "Par canal",
        "why_not_sent": "Pourquoi non envoyés",
        "cost": "Coût",
        "results": "Résultats",
        "audience": "Audience",
        "control_share": "Groupe témoin",
        "everyone": "toutes les personnes identifiées",
        "treated": "Traités",
        "control": "Témoin",
        "global_holdout": "Exclusion globale",
        "arm": "Groupe",
        "people_n": "Personnes",
        "sent": "Envoyés",
        "converted": "Convertis",
        "conversion_rate": "Conversion",
        "revenue_per_person": "Revenu par personne",
        "lift": "Gain (points)",
        "interval": "Intervalle à 95 %",
        "p_value": "p-valeur",
        "all": "tous",
        "conversion_by_arm": "Taux de conversion (%), traités et témoin",
        "lift_by_channel": "Gain de conversion par canal (points, intervalle à 95 %)",
        "lift_by_segment": "Gain de conversion par segment (points, intervalle à 95 %)",
        "films": "Films",
        "films_funnel": "Personnes à chaque étape de leur film",
        "film_pages_opened": "ont ouvert la page",
        "film_views": "ont lancé le film",
        "film_quarter": "en ont vu {q} %",
        "film_completed": "l'ont vu jusqu'au bout",
        "film_clicked": "ont suivi un bouton",
        "film_completion": "Taux de complétion (parmi qui l'a lancé)",
        "film_clicks": "Clics",
        "lift_points": "Gain (points)",
        "break_down_by": "Détailler par segment",
        "apply": "Appliquer",
        "attribution": "Fenêtre d'attribution (jours)",
        "excluded": "Exclus à la planification",
    },
)
