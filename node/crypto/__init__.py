"""The node's keys and its authenticated encryption."""
