"""Master data: stores, products, customers, promotions and loyalty rules, with their hidden traits."""

from __future__ import annotations

import datetime as dt
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


@dataclass
class Masters:
    """Master tables to write, plus the traits the simulation needs (not written)."""

    stores: pa.Table
    products: pa.Table
    customers: pa.Table
    promotions: pa.Table
    loyalty_rules: pa.Table
    store_weight: np.ndarray
    product_category: np.ndarray
    product_price: np.ndarray
    product_weight: np.ndarray
    customer_rate: np.ndarray
    customer_store: np.ndarray
    customer_archetype: np.ndarray
    customer_points: np.ndarray
    customer_last_purchase: np.ndarray
    promotion_category: list[str]
    promotion_start: np.ndarray
    promotion_end: np.ndarray
    promotion_discount: np.ndarray
    promotion_uplift: np.ndarray


def padded_ids(prefix: str, count: int, start: int = 1) -> np.ndarray:
    width = max(3, len(str(start + count - 1)))
    return np.array([f"{prefix}{index:0{width}d}" for index in range(start, start + count)], dtype=object)


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


def _customers(options: GeneratorOptions, rng: np.random.Generator, faker: Faker, store_weight: np.ndarray):
    count = options.effective_customers()
    first_pool = sorted({faker.first_name() for _ in range(600)})
    last_pool = sorted({faker.last_name() for _ in range(600)})
    first = columns.pick(rng.integers(0, len(first_pool), count), pa.array(first_pool))
    last = columns.pick(rng.integers(0, len(last_pool), count), pa.array(last_pool))
    domains = columns.pick(rng.integers(0, 3, count), pa.array(["example.com", "mail.example.org", "shop.example.net"]))
    # The running number makes every address unique.
    local = pc.binary_join_element_wise(pc.utf8_lower(first), pc.replace_substring(pc.utf8_lower(last), " ", ""), ".")
    local = pc.binary_join_element_wise(local, columns.integers(np.arange(1, count + 1)), "")
    emails = pc.binary_join_element_wise(local, domains, "@")
    archetypes = np.array(list(ARCHETYPES))
    shares = np.array([value[0] for value in ARCHETYPES.values()])
    archetype = rng.choice(archetypes, count, p=shares)
    relative = np.array([ARCHETYPES[name][1] for name in archetype])
    rate = relative * rng.gamma(2.0, 0.5, count) * TRANSACTIONS_PER_CUSTOMER_DAY
    # History before the window: lapsed customers last bought 60-400 days before its end.
    days_before_start = np.where(archetype == "lapsed", rng.integers(60, 400, count) - options.days + 1,
                                 rng.integers(1, 45, count))
    days_before_start = np.maximum(days_before_start, 1)
    last_purchase = np.datetime64(options.start.isoformat(), "D") - days_before_start.astype("timedelta64[D]")
    spend_history = rng.gamma(1.5, 600.0, count) * np.array([ARCHETYPES[name][2] for name in archetype])
    points = np.maximum(1, np.floor(spend_history)).astype(np.int64)
    tier = np.searchsorted([threshold for threshold, _ in TIERS], points, side="right") - 1
    status = columns.pick(tier, pa.array([name for _, name in TIERS]))
    table = pa.table({
        "customer_id": columns.numbered("C", np.arange(1, count + 1), max(4, len(str(count)))),
        "first_name": first, "email": emails, "loyalty_status": status,
        "total_loyalty_points": columns.integers(points), "last_purchase_date": columns.dates(last_purchase),
        "segment_id": pa.nulls(count, pa.string()),
    })
    store = rng.choice(len(store_weight), count, p=store_weight)
    return table, rate, store, archetype, points, last_purchase


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


def make_masters(options: GeneratorOptions, rng: np.random.Generator) -> Masters:
    """All master tables and the hidden traits that drive the simulation."""
    faker = Faker("en_US")
    faker.seed_instance(options.seed)
    stores, store_weight = _stores(options, rng, faker)
    products, category, price, product_weight = _products(options, rng)
    customers, rate, store, archetype, points, last_purchase = _customers(options, rng, faker, store_weight)
    promotions, promo_category, starts, ends, discount, uplift = _promotions(options, rng)
    return Masters(stores, products, customers, promotions, _loyalty_rules(), store_weight, category, price,
                   product_weight, rate, store, archetype, points, last_purchase, promo_category, starts, ends,
                   discount, uplift)
