"""Stores, the product catalogue and the stock of the demo retailer.

The retailer sells fashion, shoes, accessories, home, beauty, sport and kids' products in
physical stores across France and online. Prices are lognormal around a median per category
(ending in .99 or .90); products of a category are bought with a Zipf-like popularity; each
category has complementary ones (shoes with accessories, sport with shoes...), which orders
use to fill a basket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from surmesure.world import text
from surmesure.world.base import Spec, seconds
from surmesure.world.names import zipf_weights
from surmesure.world.places import CITIES, ONLINE, store_count, store_slots


class Category(NamedTuple):
    code: str
    name: str
    share: float
    median_price: float
    sigma: float
    complements: tuple[str, ...]
    kinds: tuple[str, ...]
    qualifiers: tuple[str, ...]


COLOURS = (
    "bleu marine", "écru", "noir", "kaki", "terracotta", "gris chiné", "blanc", "vert sauge",
    "camel", "bordeaux", "rose poudré", "jaune moutarde",
)  # fmt: skip

CATEGORIES: tuple[Category, ...] = (
    Category("clothing", "Vêtements", 0.30, 35.0, 0.45, ("accessories", "shoes"),
             ("T-shirt", "Chemise", "Pull", "Jean", "Robe", "Veste", "Pantalon chino",
              "Sweat", "Jupe", "Manteau", "Polo", "Gilet"),
             ("en coton bio", "en lin", "col rond", "oversize", "rayé", "en laine mérinos",
              "slim", "brodé")),
    Category("shoes", "Chaussures", 0.14, 69.0, 0.35, ("accessories", "clothing"),
             ("Baskets", "Bottines", "Mocassins", "Sandales", "Escarpins", "Derbies",
              "Chaussons"),
             ("en cuir", "en toile", "à lacets", "compensées", "vegan", "montantes")),
    Category("accessories", "Accessoires", 0.10, 19.0, 0.5, ("clothing",),
             ("Écharpe", "Ceinture", "Sac cabas", "Bonnet", "Casquette", "Portefeuille",
              "Chaussettes", "Foulard"),
             ("en cuir", "en laine", "en soie", "tressé", "à motifs", "recyclé")),
    Category("home", "Maison", 0.14, 24.0, 0.8, ("home",),
             ("Plaid", "Coussin", "Bougie parfumée", "Vase", "Lampe", "Tasse", "Plateau",
              "Linge de lit", "Panier"),
             ("en lin lavé", "en grès", "en rotin", "en céramique", "en velours", "artisanal")),
    Category("beauty", "Beauté", 0.12, 16.0, 0.5, ("beauty",),
             ("Crème hydratante", "Sérum", "Eau de toilette", "Savon", "Baume à lèvres",
              "Shampooing solide", "Huile sèche"),
             ("à l'aloe vera", "au karité", "bio", "sans parfum", "à la fleur d'oranger")),
    Category("sport", "Sport", 0.10, 39.0, 0.6, ("shoes", "sport"),
             ("Legging", "Brassière", "Short de running", "Veste coupe-vent", "Tapis de yoga",
              "Gourde", "T-shirt technique"),
             ("respirant", "déperlant", "recyclé", "léger", "réfléchissant")),
    Category("kids", "Enfants", 0.10, 19.0, 0.45, ("kids",),
             ("Body", "Pyjama", "Salopette", "Doudou", "Gigoteuse", "Ensemble", "Bavoir"),
             ("en coton bio", "imprimé", "en gaze", "à pressions", "réversible")),
)  # fmt: skip
CATEGORY_INDEX = {c.code: i for i, c in enumerate(CATEGORIES)}


@dataclass
class Stores:
    """Physical stores, then the online store (always last)."""

    ids: list[str]
    names: list[str]
    city: np.ndarray
    latitude: np.ndarray
    longitude: np.ndarray

    @property
    def physical(self) -> int:
        return len(self.ids) - 1

    def table(self) -> pa.Table:
        n = self.physical
        cities = [CITIES[c].name for c in self.city] + [None]
        postcodes = [CITIES[c].postcode for c in self.city] + [None]
        return pa.table(
            {
                "store_id": pa.array(self.ids, pa.string()),
                "name": pa.array(self.names, pa.string()),
                "city": pa.array(cities, pa.string()),
                "postcode": pa.array(postcodes, pa.string()),
                "country": pa.array(["FR"] * (n + 1), pa.string()),
                "latitude": pa.array([*self.latitude.tolist(), None], pa.float64()),
                "longitude": pa.array([*self.longitude.tolist(), None], pa.float64()),
            }
        )


def make_stores(spec: Spec) -> Stores:
    slots = store_slots(store_count(spec.customers))
    return Stores(
        ids=[f"S{i + 1:03d}" for i in range(len(slots))] + [ONLINE],
        names=[name for _, name, _, _ in slots] + ["Boutique en ligne"],
        city=np.array([c for c, _, _, _ in slots]),
        latitude=np.array([lat for _, _, lat, _ in slots]),
        longitude=np.array([lon for _, _, _, lon in slots]),
    )


@dataclass
class Catalog:
    """Products (code, name, category index, price) and, per category, the product indices
    with their cumulative popularity for sampling."""

    codes: pa.Array
    names: pa.Array
    category: np.ndarray
    price: np.ndarray
    members: list[np.ndarray]
    cumulative: list[np.ndarray]

    @property
    def size(self) -> int:
        return len(self.price)

    def table(self) -> pa.Table:
        labels = pa.array([c.code for c in CATEGORIES], pa.string())
        return pa.table(
            {
                "product_code": self.codes,
                "name": self.names,
                "category": labels.take(pa.array(self.category)),
                "price": pa.array(self.price, pa.float64()),
                "currency": pa.array(["EUR"] * self.size, pa.string()),
            }
        )

    def pick(self, rng: np.random.Generator, category: np.ndarray) -> np.ndarray:
        """One product per element of ``category``, by popularity within the category."""
        out = np.empty(len(category), np.int64)
        for c in range(len(CATEGORIES)):
            where = np.flatnonzero(category == c)
            if len(where):
                slot = np.searchsorted(self.cumulative[c], rng.random(len(where)), side="right")
                out[where] = self.members[c][np.minimum(slot, len(self.members[c]) - 1)]
        return out


def product_count(customers: int) -> int:
    return int(np.clip(300 + customers // 500, 300, 2400))


def make_catalog(spec: Spec) -> Catalog:
    rng = spec.rng("catalog")
    total = product_count(spec.customers)
    shares = np.array([c.share for c in CATEGORIES])
    per_category = np.maximum(np.round(shares * total).astype(int), 10)
    category = np.repeat(np.arange(len(CATEGORIES)), per_category)
    n = len(category)
    medians = np.array([c.median_price for c in CATEGORIES])[category]
    sigmas = np.array([c.sigma for c in CATEGORIES])[category]
    raw = np.exp(np.log(medians) + sigmas * rng.standard_normal(n))
    cents = np.where(rng.random(n) < 0.8, 0.99, 0.9)
    price = np.round(np.maximum(np.floor(raw), 1.0) + cents, 2)
    names: list[str] = []
    for c in category.tolist():
        cat = CATEGORIES[c]
        kind = cat.kinds[rng.integers(len(cat.kinds))]
        qualifier = cat.qualifiers[rng.integers(len(cat.qualifiers))]
        colour = COLOURS[rng.integers(len(COLOURS))]
        names.append(f"{kind} {qualifier} {colour}" if c != CATEGORY_INDEX["beauty"] else
                     f"{kind} {qualifier} {int(rng.choice([30, 50, 100, 150]))} ml")  # fmt: skip
    codes = text.join(
        pc.utf8_upper(pa.array([CATEGORIES[c].code[:3] for c in category.tolist()], pa.string())),
        "-",
        text.digits(np.arange(1, n + 1) * 37 % 100_000, 5),
    )
    members, cumulative = [], []
    for c in range(len(CATEGORIES)):
        in_category = rng.permutation(np.flatnonzero(category == c))
        members.append(in_category)
        cumulative.append(np.cumsum(zipf_weights(len(in_category))))
    return Catalog(codes, pa.array(names, pa.string()), category, price, members, cumulative)


def stock_table(spec: Spec, stores: Stores, catalog: Catalog) -> pa.Table:
    """Stock per (product, store): a store carries about three products in four, online
    carries all; about one carried product in eight is out of stock."""
    rng = spec.rng("stock")
    n_stores, n_products = len(stores.ids), catalog.size
    store = np.repeat(np.arange(n_stores), n_products)
    product = np.tile(np.arange(n_products), n_stores)
    online = store == n_stores - 1
    carried = online | (rng.random(len(store)) < 0.75)
    store, product, online = store[carried], product[carried], online[carried]
    quantity = rng.negative_binomial(2, np.where(online, 0.02, 0.2))
    quantity = np.where(rng.random(len(store)) < 0.12, 0, quantity)
    updated = seconds(spec.end) + 5 * 3600 + rng.integers(0, 3 * 3600, size=len(store))
    return pa.table(
        {
            "product_code": catalog.codes.take(pa.array(product)),
            "store_id": pa.array(stores.ids, pa.string()).take(pa.array(store)),
            "quantity": pa.array(quantity, pa.int64()),
            "updated_at": text.timestamps(updated),
        }
    )
