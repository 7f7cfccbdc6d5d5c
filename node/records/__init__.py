"""The department's records: registering children and what happens to them."""
