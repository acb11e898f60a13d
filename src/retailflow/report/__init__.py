"""The dashboard: one self-contained interactive HTML report of the whole pipeline."""
