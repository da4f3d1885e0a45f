"""French cities of the demo world: where customers live and where the stores are.

Coordinates are the city centres (WGS 84, four decimals); ``weight`` is the population in
thousands, which sets how many customers live there and which cities get a store first.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class City(NamedTuple):
    name: str
    postcode: str
    latitude: float
    longitude: float
    weight: int


CITIES: tuple[City, ...] = (
    City("Paris", "75001", 48.8566, 2.3522, 2100),
    City("Marseille", "13001", 43.2965, 5.3698, 870),
    City("Lyon", "69001", 45.7640, 4.8357, 520),
    City("Toulouse", "31000", 43.6047, 1.4442, 500),
    City("Nice", "06000", 43.7102, 7.2620, 345),
    City("Nantes", "44000", 47.2184, -1.5536, 320),
    City("Montpellier", "34000", 43.6108, 3.8767, 300),
    City("Strasbourg", "67000", 48.5734, 7.7521, 290),
    City("Bordeaux", "33000", 44.8378, -0.5792, 260),
    City("Lille", "59000", 50.6292, 3.0573, 235),
    City("Rennes", "35000", 48.1173, -1.6778, 222),
    City("Reims", "51100", 49.2583, 4.0317, 180),
    City("Toulon", "83000", 43.1242, 5.9280, 180),
    City("Saint-Étienne", "42000", 45.4397, 4.3872, 173),
    City("Le Havre", "76600", 49.4944, 0.1079, 166),
    City("Dijon", "21000", 47.3220, 5.0415, 159),
    City("Grenoble", "38000", 45.1885, 5.7245, 158),
    City("Angers", "49000", 47.4784, -0.5632, 157),
    City("Villeurbanne", "69100", 45.7719, 4.8902, 156),
    City("Nîmes", "30000", 43.8367, 4.3601, 148),
    City("Clermont-Ferrand", "63000", 45.7772, 3.0870, 147),
    City("Aix-en-Provence", "13100", 43.5297, 5.4474, 145),
    City("Le Mans", "72000", 48.0061, 0.1996, 143),
    City("Brest", "29200", 48.3904, -4.4861, 139),
    City("Tours", "37000", 47.3941, 0.6848, 136),
    City("Amiens", "80000", 49.8941, 2.2958, 133),
    City("Limoges", "87000", 45.8336, 1.2611, 130),
    City("Annecy", "74000", 45.8992, 6.1294, 130),
    City("Boulogne-Billancourt", "92100", 48.8397, 2.2399, 121),
    City("Perpignan", "66000", 42.6887, 2.8948, 120),
    City("Metz", "57000", 49.1193, 6.1757, 120),
    City("Besançon", "25000", 47.2378, 6.0241, 117),
    City("Orléans", "45000", 47.9030, 1.9093, 116),
    City("Rouen", "76000", 49.4432, 1.0999, 114),
    City("Saint-Denis", "93200", 48.9362, 2.3574, 113),
    City("Argenteuil", "95100", 48.9472, 2.2467, 111),
    City("Montreuil", "93100", 48.8638, 2.4485, 111),
    City("Mulhouse", "68100", 47.7508, 7.3359, 108),
    City("Caen", "14000", 49.1829, -0.3707, 106),
    City("Nancy", "54000", 48.6921, 6.1844, 104),
    City("Roubaix", "59100", 50.6942, 3.1746, 98),
    City("Tourcoing", "59200", 50.7239, 3.1612, 98),
    City("Avignon", "84000", 43.9493, 4.8055, 91),
    City("Poitiers", "86000", 46.5802, 0.3404, 89),
    City("Dunkerque", "59140", 51.0343, 2.3768, 87),
    City("Versailles", "78000", 48.8049, 2.1204, 84),
    City("Béziers", "34500", 43.3442, 3.2158, 79),
    City("Cherbourg-en-Cotentin", "50100", 49.6337, -1.6222, 78),
    City("La Rochelle", "17000", 46.1603, -1.1511, 77),
    City("Pau", "64000", 43.2951, -0.3708, 76),
    City("Cannes", "06400", 43.5528, 7.0174, 74),
    City("Saint-Nazaire", "44600", 47.2735, -2.2138, 72),
    City("Ajaccio", "20000", 41.9192, 8.7386, 72),
    City("Calais", "62100", 50.9513, 1.8587, 67),
    City("Colmar", "68000", 48.0794, 7.3585, 67),
    City("Valence", "26000", 44.9334, 4.8924, 65),
    City("Bourges", "18000", 47.0810, 2.3988, 64),
    City("Quimper", "29000", 47.9960, -4.1028, 63),
    City("Troyes", "10000", 48.2973, 4.0744, 62),
    City("Montauban", "82000", 44.0176, 1.3550, 61),
    City("Chambéry", "73000", 45.5646, 5.9178, 60),
    City("Niort", "79000", 46.3237, -0.4588, 59),
    City("Lorient", "56100", 47.7483, -3.3700, 57),
    City("Beauvais", "60000", 49.4295, 2.0807, 56),
    City("Vannes", "56000", 47.6582, -2.7608, 54),
    City("Bayonne", "64100", 43.4929, -1.4748, 52),
    City("Laval", "53000", 48.0706, -0.7734, 50),
    City("Albi", "81000", 43.9289, 2.1464, 49),
    City("Évreux", "27000", 49.0270, 1.1508, 47),
    City("Saint-Malo", "35400", 48.6493, -2.0257, 47),
    City("Blois", "41000", 47.5861, 1.3359, 46),
    City("Carcassonne", "11000", 43.2130, 2.3491, 46),
    City("Saint-Brieuc", "22000", 48.5136, -2.7653, 44),
    City("Arras", "62000", 50.2910, 2.7775, 42),
    City("Angoulême", "16000", 45.6484, 0.1562, 42),
    City("Chartres", "28000", 48.4439, 1.4890, 39),
    City("Mâcon", "71000", 46.3069, 4.8287, 34),
    City("Agen", "47000", 44.2033, 0.6163, 33),
    City("Périgueux", "24000", 45.1846, 0.7214, 30),
    City("Biarritz", "64200", 43.4832, -1.5586, 25),
)

# Second stores of the largest cities: (city, district, north offset, east offset) in degrees.
DISTRICTS: tuple[tuple[str, str, float, float], ...] = (
    ("Paris", "Montparnasse", -0.0140, -0.0300),
    ("Lyon", "Confluence", -0.0170, -0.0200),
    ("Marseille", "Prado", -0.0250, 0.0050),
    ("Paris", "Bastille", -0.0030, 0.0170),
    ("Toulouse", "Compans", 0.0100, -0.0100),
    ("Bordeaux", "Mériadeck", -0.0030, -0.0150),
    ("Paris", "Batignolles", 0.0300, -0.0350),
    ("Lille", "Euralille", 0.0070, 0.0130),
    ("Nantes", "Beaulieu", -0.0100, 0.0200),
    ("Nice", "Saint-Isidore", 0.0250, -0.0800),
)
FIRST_DISTRICT = {
    "Paris": "Rivoli",
    "Lyon": "Part-Dieu",
    "Marseille": "Vieux-Port",
    "Toulouse": "Capitole",
    "Bordeaux": "Sainte-Catherine",
    "Lille": "Centre",
    "Nantes": "Graslin",
    "Nice": "Masséna",
}

MIN_STORES, MAX_STORES = 40, 80
ONLINE = "online"


def store_count(customers: int) -> int:
    """Physical stores of a world of ``customers``: 40 up to 50,000 customers, then one more
    per 25,000, at most 80."""
    return int(np.clip(MIN_STORES + max(customers - 50_000, 0) // 25_000, MIN_STORES, MAX_STORES))


def store_slots(count: int) -> list[tuple[int, str, float, float]]:
    """The first ``count`` stores as (city index, store name, latitude, longitude): the
    largest cities first, a second store in a large city every fourth place."""
    index = {c.name: i for i, c in enumerate(CITIES)}
    slots: list[tuple[int, str, float, float]] = []
    extras = iter(DISTRICTS)
    cities = iter(range(len(CITIES)))
    while len(slots) < count:
        extra = next(extras, None) if len(slots) % 4 == 3 else None
        if extra is not None:
            name, district, north, east = extra
            city = CITIES[index[name]]
            slots.append(
                (
                    index[name],
                    f"{name} {district}",
                    round(city.latitude + north, 4),
                    round(city.longitude + east, 4),
                )
            )
            continue
        i = next(cities)
        city = CITIES[i]
        label = (
            f"{city.name} {FIRST_DISTRICT[city.name]}" if city.name in FIRST_DISTRICT else city.name
        )
        slots.append((i, label, city.latitude, city.longitude))
    return slots


def nearest(
    latitudes: np.ndarray, longitudes: np.ndarray, to_lat: np.ndarray, to_lon: np.ndarray
) -> np.ndarray:
    """Index in ``to_*`` of the nearest point (great-circle distance) for each point."""
    lat1, lon1 = np.radians(latitudes)[:, None], np.radians(longitudes)[:, None]
    lat2, lon2 = np.radians(to_lat)[None, :], np.radians(to_lon)[None, :]
    h = (
        np.sin((lat2 - lat1) / 2) ** 2
        + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    )
    return np.asarray(np.argmin(h, axis=1))
