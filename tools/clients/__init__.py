"""Client-side logic of each person: connecting, importing, reading and exporting tables."""
