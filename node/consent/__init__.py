"""Guardians' consents, schools' grants and extracts, receipts, and break-glass access."""
