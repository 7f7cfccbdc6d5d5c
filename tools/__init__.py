"""The `childreg` command line, synthetic data, the local demo federation and the benchmark."""
