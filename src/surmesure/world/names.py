"""Words of the demo world: French first and last names, streets, e-mail domains.

Frequencies are rough (the commonest names first, drawn with a Zipf-like weight), enough for
the names to look like a French customer base rather than to match any census.
"""

from __future__ import annotations

import unicodedata

import numpy as np

FEMALE = (
    "Marie",
    "Nathalie",
    "Isabelle",
    "Sylvie",
    "Catherine",
    "Sophie",
    "Christine",
    "Valérie",
    "Sandrine",
    "Céline",
    "Julie",
    "Camille",
    "Laura",
    "Émilie",
    "Léa",
    "Manon",
    "Chloé",
    "Hélène",
    "Anne",
    "Aurélie",
    "Stéphanie",
    "Élodie",
    "Virginie",
    "Caroline",
    "Mathilde",
    "Pauline",
    "Claire",
    "Inès",
    "Jade",
    "Louise",
    "Emma",
    "Zoé",
    "Anaïs",
    "Océane",
    "Margaux",
    "Françoise",
    "Monique",
    "Brigitte",
    "Agnès",
    "Mélanie",
    "Marie-Claire",
    "Anne-Sophie",
    "Marie-Hélène",
    "Chantal",
    "Joëlle",
    "Maëlle",
    "Noémie",
    "Lucie",
    "Charlotte",
    "Sarah",
)
MALE = (
    "Jean",
    "Philippe",
    "Michel",
    "Alain",
    "Patrick",
    "Nicolas",
    "Christophe",
    "Pierre",
    "Laurent",
    "Frédéric",
    "Sébastien",
    "Julien",
    "Stéphane",
    "David",
    "Thomas",
    "Éric",
    "Olivier",
    "Antoine",
    "Maxime",
    "Lucas",
    "Hugo",
    "Louis",
    "Gabriel",
    "Léo",
    "Théo",
    "Arthur",
    "Raphaël",
    "Mathieu",
    "Guillaume",
    "François",
    "Jérôme",
    "Benoît",
    "Cédric",
    "Jean-Pierre",
    "Jean-Luc",
    "Jean-François",
    "Pierre-Yves",
    "Grégory",
    "Adrien",
    "Romain",
    "Quentin",
    "Clément",
    "Vincent",
    "Bernard",
    "Daniel",
    "Gérard",
    "Yves",
    "Noël",
    "Joël",
    "Paul",
)
LAST = (
    "Martin", "Bernard", "Thomas", "Petit", "Robert", "Richard", "Durand", "Dubois", "Moreau",
    "Laurent", "Simon", "Michel", "Lefèvre", "Leroy", "Roux", "David", "Bertrand", "Morel",
    "Fournier", "Girard", "Bonnet", "Dupont", "Lambert", "Fontaine", "Rousseau", "Vincent",
    "Müller", "Lefebvre", "Faure", "André", "Mercier", "Blanc", "Guérin", "Boyer", "Garnier",
    "Chevalier", "François", "Legrand", "Gauthier", "Garcia", "Perrin", "Robin", "Clément",
    "Morin", "Nicolas", "Henry", "Roussel", "Mathieu", "Gautier", "Masson", "Marchand", "Duval",
    "Denis", "Dumont", "Marie", "Lemaire", "Noël", "Meyer", "Dufour", "Meunier", "Brun",
    "Blanchard", "Giraud", "Joly", "Rivière", "Lucas", "Brunet", "Gaillard", "Barbier", "Arnaud",
    "Martinez", "Gérard", "Roche", "Renard", "Schmitt", "Roy", "Leroux", "Colin", "Vidal",
    "Caron", "Picard", "Roger", "Fabre", "Aubert", "Lemoine", "Renaud", "Dumas", "Lacroix",
    "Olivier", "Philippe", "Bourgeois", "Pierre", "Benoît", "Rey", "Leclerc", "Payet", "Rolland",
    "Leclercq", "Guillaume", "Lecomte", "Lopez", "Jean", "Dupuy", "Guillot", "Hubert", "Berger",
    "Carpentier", "Sanchez", "Dupuis", "Moulin", "Louis", "Deschamps", "Huet", "Vasseur",
    "Perez", "Boucher", "Fleury", "Royer", "Klein", "Jacquet", "Adam", "Paris", "Poirier",
    "Marty", "Aubry", "Guyot", "Carré", "Charles", "Renault", "Charpentier", "Ménard", "Maillard",
    "Baron", "Bertin", "Bailly", "Hervé", "Schneider", "Fernandez", "Le Gall", "Collet", "Léger",
    "Bouvier", "Julien", "Prévost", "Millet", "Perrot", "Daniel", "Le Roux", "Cousin", "Germain",
    "Breton", "Besson", "Langlois", "Rémy", "Le Goff", "Pelletier", "Lévêque", "Perrier",
)  # fmt: skip
STREETS = (
    "rue de la République", "rue Victor Hugo", "avenue Jean Jaurès", "rue Pasteur",
    "boulevard Gambetta", "rue de la Paix", "avenue du Général de Gaulle", "rue des Écoles",
    "rue du Moulin", "place de la Mairie", "rue Jules Ferry", "allée des Tilleuls",
    "chemin des Vignes", "rue de l'Église", "impasse des Lilas", "avenue de la Gare",
    "rue Émile Zola", "boulevard Voltaire", "rue Nationale", "quai des Chartrons",
    "rue Saint-Michel", "rue du Château", "avenue Foch", "rue des Fleurs", "cours Lafayette",
)  # fmt: skip
DOMAINS = (
    ("gmail.com", 34), ("orange.fr", 15), ("hotmail.fr", 10), ("yahoo.fr", 7), ("free.fr", 7),
    ("sfr.fr", 5), ("laposte.net", 5), ("outlook.fr", 5), ("wanadoo.fr", 4), ("icloud.com", 4),
    ("live.fr", 3), ("bbox.fr", 1),
)  # fmt: skip
LANGUAGES = (("fr", 930), ("en", 30), ("es", 10), ("de", 10), ("it", 10), ("pt", 10))

NICKNAMES = {
    "Nicolas": "Nico", "Christophe": "Chris", "Frédéric": "Fred", "Sébastien": "Seb",
    "Catherine": "Cathy", "Christine": "Christine", "Valérie": "Val", "Alexandre": "Alex",
    "Guillaume": "Guillaume", "Mathieu": "Matthieu", "Philippe": "Phil",
}  # fmt: skip


def ascii_fold(text: str) -> str:
    """``text`` without accents, e.g. for an e-mail address (Hélène -> Helene)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def spelling_variant(name: str) -> str:
    """Another way a call-centre agent writes ``name``: without accents, without the hyphen,
    a nickname, or all capitals; always different from ``name``."""
    for variant in (
        ascii_fold(name),
        name.replace("-", " "),
        NICKNAMES.get(name, name),
        name.upper(),
    ):
        if variant != name:
            return variant
    return name + "e"


def zipf_weights(count: int, exponent: float = 0.9) -> np.ndarray:
    """Normalized weights 1/rank**exponent for ``count`` ranked items."""
    weights = 1.0 / np.arange(1, count + 1) ** exponent
    return np.asarray(weights / weights.sum())
