"""ETL of the whole-process recording supervision platform (see README)."""
