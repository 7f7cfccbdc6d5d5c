"""A department's node: encrypted storage, records, statistics answers, and its gRPC server.

Never imports ``coordinator``; the two meet only through ``proto/``.
"""
