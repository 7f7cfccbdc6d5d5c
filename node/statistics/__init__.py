"""What leaves the node as a statistic: count vectors, the statistics desk, secure aggregation."""
