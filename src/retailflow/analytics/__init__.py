"""Analytics stages: each a pure Ibis function from staging tables to an output table, plus a run_* that materialises it."""

#: Days either side of a store-day without snapshots in which a sale puts the product in the store's assortment
#: (sales.py); here, where the commands read it without importing the stages (answers.py).
ASSORTMENT_WINDOW_DAYS = 14
