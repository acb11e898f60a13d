"""Data-quality rules (data, in YAML) and the engine that routes rows to staging or quarantine."""
