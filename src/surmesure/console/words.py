"""The console's words in each of its languages. Every language has every word (a test holds
them equal); a page's language is its user's, or the browser's before signing in."""

from __future__ import annotations

from fastapi import Request

EN: dict[str, str] = {
    "product": "surmesure",
    "console": "Console",
    "home": "Home",
    "people": "People",
    "segments": "Segments",
    "content": "Content",
    "campaigns": "Campaigns",
    "experiments": "Experiments",
    "data": "Data",
    "sign_in": "Sign in",
    "sign_out": "Sign out",
    "email": "E-mail address",
    "password": "Password",
    "signed_in_as": "Signed in as",
    "bad_sign_in": "The e-mail address or the password is wrong, or the account is disabled.",
    "error": "Something is wrong",
    "what_to_do": "What to do",
    "field": "Field",
    "back_home": "Back to the home page",
    "skip": "Skip to the content",
    "menu": "Main menu",
    "kpis": "Key figures",
    "customers": "Customers",
    "active": "Active",
    "revenue_per_customer": "Revenue per customer",
    "retention": "Repeat purchase rate",
    "nps": "NPS",
    "churn_rate": "Churn rate",
    "average_basket": "Average basket",
    "as_of": "As of",
    "trend": "Trend",
    "monthly_revenue": "Revenue by month",
    "monthly_buyers": "Buyers by month",
    "nps_by_month": "NPS by month",
    "running": "Running now",
    "running_campaigns": "Campaigns",
    "running_journeys": "Journeys",
    "nothing_running": "Nothing is running.",
    "no_data": "No data yet: import customers and orders first.",
    "month": "Month",
    "value": "Value",
    "role": "Role",
    "language": "Language",
}

FR: dict[str, str] = {
    "product": "surmesure",
    "console": "Console",
    "home": "Accueil",
    "people": "Personnes",
    "segments": "Segments",
    "content": "Contenus",
    "campaigns": "Campagnes",
    "experiments": "Expériences",
    "data": "Données",
    "sign_in": "Se connecter",
    "sign_out": "Se déconnecter",
    "email": "Adresse e-mail",
    "password": "Mot de passe",
    "signed_in_as": "Connecté en tant que",
    "bad_sign_in": "L'adresse e-mail ou le mot de passe est faux, ou le compte est désactivé.",
    "error": "Quelque chose ne va pas",
    "what_to_do": "Que faire",
    "field": "Champ",
    "back_home": "Retour à l'accueil",
    "skip": "Aller au contenu",
    "menu": "Menu principal",
    "kpis": "Chiffres clés",
    "customers": "Clients",
    "active": "Actifs",
    "revenue_per_customer": "Chiffre d'affaires par client",
    "retention": "Taux de réachat",
    "nps": "NPS",
    "churn_rate": "Taux d'attrition",
    "average_basket": "Panier moyen",
    "as_of": "Au",
    "trend": "Tendance",
    "monthly_revenue": "Chiffre d'affaires par mois",
    "monthly_buyers": "Acheteurs par mois",
    "nps_by_month": "NPS par mois",
    "running": "En cours",
    "running_campaigns": "Campagnes",
    "running_journeys": "Parcours",
    "nothing_running": "Rien n'est en cours.",
    "no_data": "Pas encore de données : importez d'abord clients et commandes.",
    "month": "Mois",
    "value": "Valeur",
    "role": "Rôle",
    "language": "Langue",
}

WORDS: dict[str, dict[str, str]] = {"en": EN, "fr": FR}


def add(language: str, words: dict[str, str]) -> None:
    """Add a section's own words to a language (each section module adds its own)."""
    WORDS[language].update(words)


def language_of(request: Request) -> str:
    """The browser's preferred language among the console's (English by default)."""
    best, best_q = "en", 0.0
    for part in request.headers.get("accept-language", "").split(","):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        lang = tag.strip().lower()[:2]
        if lang in WORDS and q > best_q:
            best, best_q = lang, q
    return best
