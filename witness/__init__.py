"""A witness of the nodes' audit logs: its decision (cosigning), store, servicer,
configuration and composition root (server), run alone or hosted by the coordinator.

Never imports ``node`` or ``coordinator``; they meet only through ``proto/``."""
