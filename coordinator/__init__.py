"""The national coordinator: statistics rounds across departments, and its gRPC server.

Never imports ``node``; the two meet only through ``proto/``. It never receives a record.
"""
