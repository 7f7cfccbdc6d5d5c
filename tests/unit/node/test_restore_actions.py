"""Every audit action has a place in the restore: replayed, listed for re-entry, warned
about, or known to change nothing — so a new action cannot be lost silently."""

from __future__ import annotations

from childreg.audit.leaf import ACTIONS
from node.restore import RECORD_CHANGES, REPLAY, UNCHANGING, WARNINGS


def test_every_action_is_in_exactly_one_restore_set() -> None:
    """Each action of the audit log is replayed, listed, warned about or unchanging, once."""
    sets = {
        "replayed": set(REPLAY),
        "listed": set(RECORD_CHANGES),
        "warned": set(WARNINGS),
        "unchanging": set(UNCHANGING),
    }
    for action in ACTIONS:
        homes = [name for name, members in sets.items() if action in members]
        assert len(homes) == 1, (action, homes)
    for name, members in sets.items():
        assert members <= set(ACTIONS), (name, members - set(ACTIONS))
