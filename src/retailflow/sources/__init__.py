"""Exports as they come: the source mapping (mapping), how a mapped file is read (expressions, reading), and the
proposer behind `retailflow map` (propose)."""
