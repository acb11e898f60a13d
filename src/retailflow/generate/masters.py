"""Master data: stores, products, customers, promotions and loyalty rules, with their hidden traits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from faker import Faker

from retailflow.generate import columns
from retailflow.generate.options import TRANSACTIONS_PER_CUSTOMER_DAY, GeneratorOptions

#: Category -> (price range, product nouns).
CATEGORIES = {
    "Electronics": ((15.0, 450.0), ["Headphones", "Speaker", "Charger", "Smart Watch", "Tablet", "Keyboard", "Camera"]),
    "Apparel": ((8.0, 160.0), ["T-Shirt", "Jeans", "Hoodie", "Jacket", "Sneakers", "Dress", "Scarf"]),
    "Grocery": ((1.0, 25.0), ["Coffee", "Olive Oil", "Pasta", "Granola", "Green Tea", "Chocolate", "Honey"]),
    "Home": ((5.0, 220.0), ["Lamp", "Towel Set", "Cookware", "Candle", "Cushion", "Storage Box", "Kettle"]),
    "Beauty": ((3.0, 70.0), ["Shampoo", "Face Cream", "Lipstick", "Perfume", "Body Lotion", "Sunscreen"]),
    "Toys": ((5.0, 90.0), ["Puzzle", "Board Game", "Action Figure", "Plush Bear", "Building Set", "Kite"]),
    "Sports": ((8.0, 260.0), ["Yoga Mat", "Dumbbells", "Water Bottle", "Tennis Racket", "Football", "Bike Helmet"]),
    "Books": ((5.0, 45.0), ["Cookbook", "Novel", "Atlas", "Biography", "Comic", "Travel Guide"]),
}
ADJECTIVES = ["Classic", "Premium", "Eco", "Deluxe", "Everyday", "Pro", "Mini", "Ultra", "Smart", "Organic",
              "Vintage", "Sport", "Urban", "Cozy", "Bright"]
TIERS = ((0, "Bronze"), (500, "Silver"), (1500, "Gold"), (4000, "Platinum"))
#: Customer archetypes: share, mean purchases per day (relative), spend multiplier.
ARCHETYPES = {"loyal": (0.15, 3.0, 1.4), "regular": (0.40, 1.0, 1.0), "occasional": (0.30, 0.35, 0.8),
              "lapsed": (0.15, 0.0, 1.0)}
EMAIL_DOMAINS = ["example.com", "mail.example.org", "shop.example.net"]
#: Gamma shape and scale of a customer's purchase rate relative to their archetype's (mean 1).
RATE_SPREAD = (2.0, 0.5)
#: Expected purchases per customer-day, over archetypes and the spread.
MEAN_RATE = (sum(share * relative for share, relative, _ in ARCHETYPES.values()) * RATE_SPREAD[0] * RATE_SPREAD[1]
             * TRANSACTIONS_PER_CUSTOMER_DAY)


@dataclass
class Catalog:
    """Stores, products, promotions and loyalty rules: tables to write, and the traits that drive the simulation."""

    stores: pa.Table
    products: pa.Table
    promotions: pa.Table
    loyalty_rules: pa.Table
    store_weight: np.ndarray
    product_category: np.ndarray
    product_price: np.ndarray
    product_weight: np.ndarray
    promotion_category: list[str]
    promotion_start: np.ndarray
    promotion_end: np.ndarray
    promotion_discount: np.ndarray
    promotion_uplift: np.ndarray


@dataclass
class Customers:
    """Each customer's traits; the customer master (customer_details) is formatted from them a slice at a time."""

    ids: pa.Array
    rate: np.ndarray  # expected purchases per day
    home_store: np.ndarray
    archetype: np.ndarray  # index into ARCHETYPES
    points: np.ndarray
    last_purchase: np.ndarray
    first_name: np.ndarray  # index into first_names
    last_name: np.ndarray  # index into last_names
    email_domain: np.ndarray  # index into EMAIL_DOMAINS
    first_names: pa.Array
    last_names: pa.Array

    def details(self, start: int, stop: int) -> pa.Table:
        """customer_details rows of customers start to stop - 1; a running number makes each e-mail unique."""
        rows = slice(start, stop)
        emails = pc.binary_join_element_wise(
            columns.pick(self.first_name[rows], pc.utf8_lower(self.first_names)), ".",
            columns.pick(self.last_name[rows], pc.replace_substring(pc.utf8_lower(self.last_names), " ", "")),
            columns.integers(np.arange(start + 1, stop + 1)), "@",
            columns.pick(self.email_domain[rows], pa.array(EMAIL_DOMAINS)), "")
        tier = np.searchsorted([threshold for threshold, _ in TIERS], self.points[rows], side="right") - 1
        return pa.table({
            "customer_id": self.ids.slice(start, stop - start),
            "first_name": columns.pick(self.first_name[rows], self.first_names), "email": emails,
            "loyalty_status": columns.pick(tier, pa.array([name for _, name in TIERS])),
            "total_loyalty_points": columns.integers(self.points[rows]),
            "last_purchase_date": columns.dates(self.last_purchase[rows]),
            "segment_id": pa.nulls(stop - start, pa.string()),
        })


def padded_ids(prefix: str, count: int) -> pa.Array:
    """prefix + 1..count zero-padded to at least three digits, e.g. ST001."""
    return columns.numbered(prefix, np.arange(1, count + 1), max(3, len(str(count))))


def _stores(options: GeneratorOptions, rng: np.random.Generator, faker: Faker) -> tuple[pa.Table, np.ndarray]:
    count = options.stores
    cities = [faker.city() for _ in range(count)]
    regions = [faker.state() for _ in range(count)]
    kinds = rng.choice(["Mall", "Plaza", "Market", "Center", "Outlet", "Square"], count)
    names = [f"{city} {kind}" for city, kind in zip(cities, kinds)]
    opened = [options.start - dt.timedelta(days=int(days)) for days in rng.integers(200, 4000, count)]
    weight = rng.lognormal(0.0, 0.5, count)  # store size: big stores sell several times more
    table = pa.table({"store_id": padded_ids("ST", count), "store_name": names, "store_city": cities,
                      "store_region": regions, "opening_date": [day.isoformat() for day in opened]})
    return table, weight / weight.sum()


def _products(options: GeneratorOptions, rng: np.random.Generator) -> tuple[pa.Table, np.ndarray, np.ndarray, np.ndarray]:
    count = options.products
    names = list(CATEGORIES)
    category_index = np.arange(count) % len(names)
    rng.shuffle(category_index)
    low = np.array([CATEGORIES[names[i]][0][0] for i in category_index])
    high = np.array([CATEGORIES[names[i]][0][1] for i in category_index])
    price = np.round(np.exp(rng.uniform(np.log(low), np.log(high))), 2) - 0.01
    price = np.maximum(price, 0.99)
    nouns = [CATEGORIES[names[i]][1][rng.integers(len(CATEGORIES[names[i]][1]))] for i in category_index]
    adjectives = rng.choice(ADJECTIVES, count)
    product_names = [f"{adjective} {noun} {index + 1}" for index, (adjective, noun) in enumerate(zip(adjectives, nouns))]
    # Zipf-like popularity: a few products sell a lot, most sell little.
    rank = rng.permutation(count) + 1
    weight = 1.0 / rank ** 1.05
    table = pa.table({
        "product_id": padded_ids("P", count), "product_name": product_names,
        "product_category": [names[i] for i in category_index],
        "unit_price": [f"{value:.2f}" for value in price],
        "current_stock_level": rng.integers(0, 500, count).astype(str),
    })
    return table, np.array([names[i] for i in category_index], dtype=object), price, weight / weight.sum()


def _customers(count: int, options: GeneratorOptions, rng: np.random.Generator, faker: Faker,
               store_weight: np.ndarray) -> Customers:
    # Faker names a pool; customers combine pool entries.
    first_names = pa.array(sorted({faker.first_name() for _ in range(600)}))
    last_names = pa.array(sorted({faker.last_name() for _ in range(600)}))
    first_name = rng.integers(0, len(first_names), count, dtype=np.int16)
    last_name = rng.integers(0, len(last_names), count, dtype=np.int16)
    email_domain = rng.integers(0, len(EMAIL_DOMAINS), count, dtype=np.int8)
    archetype = rng.choice(len(ARCHETYPES), count, p=[share for share, _, _ in ARCHETYPES.values()]).astype(np.int8)
    relative_rate = np.array([rate for _, rate, _ in ARCHETYPES.values()])[archetype]
    rate = relative_rate * rng.gamma(*RATE_SPREAD, count) * TRANSACTIONS_PER_CUSTOMER_DAY
    # History before the window: lapsed customers last bought 60-400 days before its end.
    lapsed = archetype == list(ARCHETYPES).index("lapsed")
    days_before_start = np.where(lapsed, rng.integers(60, 400, count) - options.days + 1, rng.integers(1, 45, count))
    days_before_start = np.maximum(days_before_start, 1)
    last_purchase = np.datetime64(options.start.isoformat(), "D") - days_before_start.astype("timedelta64[D]")
    spend_multiplier = np.array([spend for _, _, spend in ARCHETYPES.values()])[archetype]
    points = np.maximum(1, np.floor(rng.gamma(1.5, 600.0, count) * spend_multiplier)).astype(np.int64)
    home_store = rng.choice(len(store_weight), count, p=store_weight).astype(np.int32)
    ids = columns.numbered("C", np.arange(1, count + 1), max(4, len(str(count))))
    return Customers(ids, rate, home_store, archetype, points, last_purchase, first_name, last_name, email_domain,
                     first_names, last_names)


def _promotions(options: GeneratorOptions, rng: np.random.Generator):
    names = list(CATEGORIES)
    chosen = rng.choice(names, 5, replace=False)
    categories = [*chosen, "ALL"]
    days = options.days
    length = max(2, days // 8)
    # Spread windows over the period; the ALL promotion overlaps one category promotion.
    starts = np.sort(rng.choice(np.arange(0, max(1, days - length)), len(categories) - 1, replace=days - length < 5))
    all_start = int(starts[len(starts) // 2]) + 1
    starts = np.append(starts, min(all_start, days - 2))
    lengths = np.append(np.full(len(categories) - 1, length), max(2, length // 2))
    ends = np.minimum(starts + lengths - 1, days - 1)
    discount = rng.choice([10.0, 15.0, 20.0, 25.0, 30.0], len(categories))
    uplift = np.array([0.60, 0.42, 0.28, 0.15, 0.01, 0.08])
    rng.shuffle(uplift[:-1])
    ids = padded_ids("PR", len(categories))
    promo_names = [f"{category} {kind}" for category, kind in
                   zip(categories, rng.choice(["Flash Sale", "Days", "Week", "Special", "Bonanza"], len(categories)))]
    table = pa.table({
        "promotion_id": ids, "promotion_name": promo_names,
        "start_date": [(options.start + dt.timedelta(days=int(d))).isoformat() for d in starts],
        "end_date": [(options.start + dt.timedelta(days=int(d))).isoformat() for d in ends],
        "discount_percentage": [f"{value:.2f}" for value in discount], "applicable_category": categories,
    })
    return table, categories, starts, ends, discount / 100.0, uplift


def _loyalty_rules() -> pa.Table:
    return pa.table({
        "rule_id": ["1", "2", "3", "4"],
        "rule_name": ["Standard Earning", "Weekend Bonus", "High Value Purchase", "Super Spender"],
        "points_per_unit_spend": ["1.00", "1.00", "1.00", "1.00"],
        "min_spend_threshold": ["0.00", "50.00", "100.00", "200.00"],
        "bonus_points": ["0", "25", "50", "100"],
        "valid_days": [None, "Sat,Sun", None, None],
        "start_date": [None] * 4, "end_date": [None] * 4, "applicable_category": [None] * 4,
    })


def make_masters(options: GeneratorOptions, rng: np.random.Generator,
                 customer_count: Callable[[Catalog], int]) -> tuple[Catalog, Customers]:
    """All master tables and hidden traits; `customer_count` chooses how many customers the catalog gets."""
    faker = Faker("en_US")
    faker.seed_instance(options.seed)
    stores, store_weight = _stores(options, rng, faker)
    products, category, price, product_weight = _products(options, rng)
    promotions, promo_category, starts, ends, discount, uplift = _promotions(options, rng)
    catalog = Catalog(stores, products, promotions, _loyalty_rules(), store_weight, category, price, product_weight,
                      promo_category, starts, ends, discount, uplift)
    return catalog, _customers(customer_count(catalog), options, rng, faker, store_weight)
