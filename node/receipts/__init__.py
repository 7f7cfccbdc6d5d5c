"""Documents a node hands a guardian: receipts rendered from templates (see render.py)."""
