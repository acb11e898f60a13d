"""Exports as they come: the source mapping (mapping), how a mapped file is read (expressions, reading), what an
export's sample says about its columns (profiles), and the proposer behind `retailflow map` (propose)."""
