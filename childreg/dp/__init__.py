"""Differential privacy: exact discrete Gaussian noise, its deterministic generator, accounting.

Everything in the noise path lives here and uses only integer and rational arithmetic and
libsodium-driven bytes; ``tests/unit/test_dp_noise_path.py`` enforces that nothing from
``random``, ``numpy.random`` or ``scipy.stats`` is reachable from it.
"""
