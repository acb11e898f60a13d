"""How many customers give about the requested number of line items.

Lines per customer depend on the scale: stock-outs remove a larger share of lines when each
store-product sells more (the reorder rule's rounding up matters less), so no constant fits. A
pilot runs the same day simulation, without formatting, on a sample of stores with one
pseudo-customer per store: its rate is the store's share of all purchases, so each sampled store
sees the demand it will see in the real run (purchases away from home included) and keeps the
same inventory policy. The pilot's line items, scaled up, correct a first guess.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from retailflow.generate.anomalies import expected_planted_lines
from retailflow.generate.masters import MEAN_RATE, Catalog
from retailflow.generate.options import GeneratorOptions
from retailflow.generate.sales import Simulator

#: Stores simulated by the pilot, spread over store sizes: more is slower, and no more exact beyond about 8.
PILOT_STORES = 8
#: First guess of line items per purchase, before stock-outs (corrected by the pilot).
GUESS_LINES_PER_TRANSACTION = 2.0


def customer_count(options: GeneratorOptions, catalog: Catalog, rng: np.random.Generator) -> int:
    """options.customers, or the number of customers that gives about options.line_items line items."""
    if options.line_items is None:
        return options.customers
    guess = max(10, round(options.line_items / (options.days * MEAN_RATE * GUESS_LINES_PER_TRANSACTION)))
    return max(10, round(guess * options.line_items / max(1.0, expected_line_items(options, catalog, guess, rng))))


def expected_line_items(options: GeneratorOptions, catalog: Catalog, customers: int,
                        rng: np.random.Generator) -> float:
    """Line items (clean and planted) that this many customers give, estimated by the pilot."""
    # One store from the middle of each of PILOT_STORES equal slices of the stores ranked by size.
    by_size, picks = np.argsort(catalog.store_weight, kind="stable"), min(PILOT_STORES, len(catalog.store_weight))
    sample = np.unique(by_size[((np.arange(picks) + 0.5) * len(by_size) / picks).astype(int)])
    share = catalog.store_weight[sample].sum()
    pilot = Simulator(options, dataclasses.replace(catalog, store_weight=catalog.store_weight[sample] / share),
                      customers * MEAN_RATE * catalog.store_weight[sample], np.arange(len(sample)), rng)
    transactions = lines = 0
    for day_index in range(options.days):
        sales = pilot.simulate(day_index)
        transactions, lines = transactions + len(sales.txn_number), lines + len(sales.line_number)
    transactions, lines = transactions / share, lines / share
    return lines + expected_planted_lines(options.anomaly_rate, transactions, lines)
