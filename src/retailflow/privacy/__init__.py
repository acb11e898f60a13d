"""Customer privacy: pseudonyms, erasure (`retailflow forget`) and personal-data-free views for analysts."""
