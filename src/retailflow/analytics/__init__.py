"""Analytics stages: each a pure Ibis function from staging tables to an output table, plus a run_* that materialises it."""
