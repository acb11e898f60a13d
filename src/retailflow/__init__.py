"""retailflow: retail CSV exports to validated, analysed data."""

__version__ = "0.1.0"
