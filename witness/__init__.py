"""An independent witness of the nodes' audit logs: its store, servicer, configuration and server.

Never imports ``node`` or ``coordinator``; they meet only through ``proto/``."""
