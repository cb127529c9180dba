"""Charts and reports (matplotlib; files that open offline)."""
