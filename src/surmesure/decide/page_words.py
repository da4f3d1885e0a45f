"""The words of a personal page and of its error pages, in the page's language.

A page speaks the language of its template (``locale`` of the ``personal_page`` template:
``fr`` or ``en``; any other falls back to French), and so do the pages that say its link is
bad, its answer incomplete or its text too long: a person who reads English on their page
does not get a French error through the same link.
"""

from __future__ import annotations

from typing import Literal

Language = Literal["fr", "en"]

WORDS: dict[Language, dict[str, str]] = {
    "fr": {
        "title": "Votre espace",
        "summary": "Notre histoire",
        "orders_one": "{n} commande",
        "orders_many": "{n} commandes",
        "spent": "{amount} au total, la dernière le {day}",
        "offers": "Vos offres",
        "products": "Pour vous",
        "cta": "Découvrir la boutique",
        "nps": "Recommanderiez-vous notre enseigne à un proche ?",
        "comment": "Un commentaire ? (facultatif)",
        "send": "Envoyer",
        "gone_title": "Page introuvable",
        "gone": "Ce lien n'existe pas ou a expiré.",
        "unavailable_title": "Page indisponible",
        "unavailable": "Cette page ne peut pas s'afficher pour le moment.",
        "too_long_title": "Réponse trop longue",
        "too_long": "Raccourcissez le commentaire.",
        "incomplete_title": "Réponse incomplète",
        "bad_score": "Choisissez une note de 0 à 10.",
        "bad_comment": "Le commentaire contient un caractère invalide : écrivez-le à nouveau.",
        "thanks_title": "Merci !",
        "thanks": "Votre réponse a bien été enregistrée.",
        "busy_title": "Trop de demandes",
        "busy": "Trop de demandes sont venues de votre connexion : réessayez dans {seconds} s.",
    },
    "en": {
        "title": "Your page",
        "summary": "Our story",
        "orders_one": "{n} order",
        "orders_many": "{n} orders",
        "spent": "{amount} in all, the latest on {day}",
        "offers": "Your offers",
        "products": "For you",
        "cta": "Visit the shop",
        "nps": "Would you recommend us to a friend?",
        "comment": "A comment? (optional)",
        "send": "Send",
        "gone_title": "Page not found",
        "gone": "This link does not exist or has expired.",
        "unavailable_title": "Page unavailable",
        "unavailable": "This page cannot be shown right now.",
        "too_long_title": "Answer too long",
        "too_long": "Shorten the comment.",
        "incomplete_title": "Incomplete answer",
        "bad_score": "Choose a score from 0 to 10.",
        "bad_comment": "The comment holds a character that cannot be kept: write it again.",
        "thanks_title": "Thank you!",
        "thanks": "Your answer has been recorded.",
        "busy_title": "Too many requests",
        "busy": "Too many requests came from your connection: try again in {seconds} s.",
    },
}


def language_of(locale: str) -> Language:
    """``fr`` or ``en`` from a locale such as ``en_GB``; French otherwise."""
    return "en" if locale[:2] == "en" else "fr"
