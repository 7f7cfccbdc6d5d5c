"""Developers' tools: the local federation, synthetic data, the benchmark, protobuf generation."""
