"""The SQLCipher store's schema, as small ordered migrations.

Each migration runs in its own transaction together with its row in ``schema_migrations``,
so a crash leaves the schema either before or after a migration, never half-way, and a
migration already applied is never applied again.

Layout: ``child`` has an integer surrogate key (``id``) that the other tables reference,
so joins compare integers; categories used by count tables sit in small covering indexes
so a count reads neither names nor sealed blobs. Dates are ISO-8601 text, which sorts and
compares as dates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Final, NamedTuple, Protocol


class Connection(Protocol):
    """The part of a DB-API connection (autocommit mode) that migrations use."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Any:
        """Run one statement."""


class Migration(NamedTuple):
    """One schema step: its version, what it does, and its SQL statements."""

    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        1,
        "children, placements, care settings and assessments",
        (
            """CREATE TABLE child (
                id INTEGER PRIMARY KEY,
                child_id TEXT NOT NULL UNIQUE,
                key_version INTEGER NOT NULL,
                wrapped_key BLOB NOT NULL,
                national_id_hash BLOB UNIQUE,
                date_of_birth TEXT NOT NULL,
                sex TEXT NOT NULL,
                district TEXT NOT NULL,
                sealed_identity BLOB NOT NULL
            )""",
            """CREATE TABLE placement (
                child INTEGER NOT NULL REFERENCES child(id) ON DELETE CASCADE,
                academic_year TEXT NOT NULL,
                education_form TEXT NOT NULL,
                institution TEXT,
                PRIMARY KEY (academic_year, child)
            ) WITHOUT ROWID""",
            "CREATE INDEX placement_by_child ON placement(child, academic_year)",
            """CREATE TABLE care_setting (
                child INTEGER NOT NULL REFERENCES child(id) ON DELETE CASCADE,
                since TEXT NOT NULL,
                care_setting TEXT NOT NULL,
                PRIMARY KEY (child, since)
            ) WITHOUT ROWID""",
            """CREATE TABLE assessment (
                child INTEGER NOT NULL REFERENCES child(id) ON DELETE CASCADE,
                assessment_id INTEGER NOT NULL,
                assessment_date TEXT NOT NULL,
                commission TEXT NOT NULL,
                impairment_band TEXT,
                recommended_form TEXT,
                next_review TEXT,
                sealed_fields BLOB NOT NULL,
                PRIMARY KEY (child, assessment_id)
            ) WITHOUT ROWID""",
        ),
    ),
    Migration(
        2,
        "covering indexes for count tables",
        (
            "CREATE INDEX child_categories ON child(id, date_of_birth, sex, district)",
            """CREATE INDEX assessment_banded ON assessment(
                child, assessment_date, assessment_id, impairment_band
            ) WHERE impairment_band IS NOT NULL""",
        ),
    ),
    Migration(
        3,
        "append-only privacy ledger of statistics releases",
        (
            """CREATE TABLE privacy_ledger (
                seq INTEGER PRIMARY KEY,
                snapshot TEXT NOT NULL,
                catalogue_version INTEGER NOT NULL,
                catalogue_digest TEXT NOT NULL,
                table_id TEXT NOT NULL,
                rho_numerator INTEGER NOT NULL CHECK (rho_numerator > 0),
                rho_denominator INTEGER NOT NULL CHECK (rho_denominator > 0),
                released TEXT NOT NULL,
                released_at TEXT NOT NULL,
                requested_by TEXT NOT NULL,
                UNIQUE (snapshot, catalogue_version, table_id)
            )""",
            """CREATE TRIGGER privacy_ledger_no_update BEFORE UPDATE ON privacy_ledger
               BEGIN SELECT RAISE(ABORT, 'the privacy ledger is append-only'); END""",
            """CREATE TRIGGER privacy_ledger_no_delete BEFORE DELETE ON privacy_ledger
               BEGIN SELECT RAISE(ABORT, 'the privacy ledger is append-only'); END""",
        ),
    ),
    Migration(
        4,
        "tamper-evident audit log: leaves, Merkle subtree hashes, signed checkpoints",
        (
            """CREATE TABLE audit_leaf (
                seq INTEGER PRIMARY KEY,
                body BLOB NOT NULL
            )""",
            """CREATE TABLE audit_hash (
                level INTEGER NOT NULL,
                idx INTEGER NOT NULL,
                hash BLOB NOT NULL,
                PRIMARY KEY (level, idx)
            ) WITHOUT ROWID""",
            """CREATE TABLE audit_checkpoint (
                size INTEGER PRIMARY KEY,
                note TEXT NOT NULL
            )""",
            *(
                f"""CREATE TRIGGER {table}_no_{verb} BEFORE {verb.upper()} ON {table}
                   BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"""
                for table in ("audit_leaf", "audit_hash", "audit_checkpoint")
                for verb in ("update", "delete")
            ),
        ),
    ),
    Migration(
        5,
        "guardians' consents and the grants that schools hold",
        (
            """CREATE TABLE consent (
                consent_id TEXT PRIMARY KEY,
                child_id TEXT NOT NULL,
                purpose TEXT NOT NULL,
                school TEXT NOT NULL,
                valid_from TEXT NOT NULL,
                valid_until TEXT NOT NULL,
                evidence_ref TEXT NOT NULL,
                granted_at TEXT NOT NULL,
                granted_by TEXT NOT NULL,
                grant_hash BLOB NOT NULL UNIQUE,
                sealed_guardian BLOB NOT NULL,
                withdrawn_at TEXT
            )""",
            "CREATE INDEX consent_by_child ON consent(child_id, granted_at)",
            """CREATE TRIGGER consent_no_delete BEFORE DELETE ON consent
               BEGIN SELECT RAISE(ABORT, 'consents are kept'); END""",
            """CREATE TRIGGER consent_only_withdrawn BEFORE UPDATE ON consent
               WHEN OLD.withdrawn_at IS NOT NULL OR NEW.consent_id IS NOT OLD.consent_id
                 OR NEW.child_id IS NOT OLD.child_id OR NEW.purpose IS NOT OLD.purpose
                 OR NEW.school IS NOT OLD.school OR NEW.valid_from IS NOT OLD.valid_from
                 OR NEW.valid_until IS NOT OLD.valid_until OR NEW.grant_hash IS NOT OLD.grant_hash
               BEGIN SELECT RAISE(ABORT, 'a consent can only be withdrawn, once'); END""",
        ),
    ),
    Migration(
        6,
        "emergency (break-glass) accesses with their sealed reasons",
        (
            """CREATE TABLE breakglass (
                breakglass_id TEXT PRIMARY KEY,
                child_id TEXT NOT NULL,
                at TEXT NOT NULL,
                actor TEXT NOT NULL,
                sealed_reason BLOB NOT NULL
            )""",
            "CREATE INDEX breakglass_by_child ON breakglass(child_id, at)",
            *(
                f"""CREATE TRIGGER breakglass_no_{verb} BEFORE {verb.upper()} ON breakglass
                   BEGIN SELECT RAISE(ABORT, 'emergency accesses are kept'); END"""
                for verb in ("update", "delete")
            ),
        ),
    ),
    Migration(
        7,
        "secure aggregation: the ledger's mechanism, and the one participant set per snapshot",
        (
            # Existing entries were all released per department (stage 1).
            """ALTER TABLE privacy_ledger ADD COLUMN mechanism TEXT NOT NULL
               DEFAULT 'per-department'
               CHECK (mechanism IN ('per-department', 'secure-aggregation'))""",
            # The first participant set a node admitted in a snapshot (for every table of
            # it), with the roster's c its noise shares are drawn for; never replaced, so
            # "A dropped" rounds, other sets for other tables, or another c are refused.
            """CREATE TABLE secagg_participation (
                snapshot TEXT PRIMARY KEY,
                participants TEXT NOT NULL,
                colluders INTEGER NOT NULL CHECK (colluders >= 0),
                recorded_at TEXT NOT NULL
            )""",
            *(
                f"""CREATE TRIGGER secagg_participation_no_{verb}
                   BEFORE {verb.upper()} ON secagg_participation
                   BEGIN SELECT RAISE(ABORT, 'participant sets are append-only'); END"""
                for verb in ("update", "delete")
            ),
        ),
    ),
    Migration(
        8,
        "blind search index: keyed tokens per child",
        (
            # Children held before this migration have no tokens until the registry
            # re-indexes them (Registry.reindex_children).
            """CREATE TABLE child_token (
                token BLOB NOT NULL,
                child INTEGER NOT NULL REFERENCES child(id) ON DELETE CASCADE,
                PRIMARY KEY (token, child)
            ) WITHOUT ROWID""",
            "CREATE INDEX child_token_by_child ON child_token(child)",
        ),
    ),
    Migration(
        9,
        "the record's life: each child's append-only history, and closed records",
        (
            # Children held before this migration have history from their next change on.
            """CREATE TABLE child_event (
                child INTEGER NOT NULL REFERENCES child(id),
                seq INTEGER NOT NULL CHECK (seq >= 1),
                at TEXT NOT NULL,
                actor TEXT NOT NULL,
                kind TEXT NOT NULL,
                sealed BLOB,
                PRIMARY KEY (child, seq)
            ) WITHOUT ROWID""",
            """CREATE TABLE child_closure (
                child INTEGER PRIMARY KEY REFERENCES child(id),
                closed_on TEXT NOT NULL,
                reason TEXT NOT NULL
            )""",
            *(
                f"""CREATE TRIGGER {table}_no_{verb} BEFORE {verb.upper()} ON {table}
                   BEGIN SELECT RAISE(ABORT, 'histories and closings are kept'); END"""
                for table in ("child_event", "child_closure")
                for verb in ("update", "delete")
            ),
        ),
    ),
    Migration(
        10,
        "the generation of the KEK that wraps the child keys (KEK rotation's commit point)",
        (
            # One row. A rotation rewraps every child key and sets the new generation in
            # one transaction; the keyring file of that generation must open the node.
            """CREATE TABLE kek_state (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                generation INTEGER NOT NULL CHECK (generation >= 1)
            )""",
            "INSERT INTO kek_state(id, generation) VALUES (1, 1)",
        ),
    ),
    Migration(
        11,
        "erasure: tombstones of erased children, and deletes allowed only while erasing",
        (
            # An erased child is known by its audit-log pseudonym only; kept forever.
            """CREATE TABLE child_erasure (
                pseudonym BLOB PRIMARY KEY CHECK (length(pseudonym) = 32),
                erased_at TEXT NOT NULL,
                actor TEXT NOT NULL,
                reason TEXT NOT NULL
            )""",
            *(
                f"""CREATE TRIGGER child_erasure_no_{verb} BEFORE {verb.upper()} ON child_erasure
                   BEGIN SELECT RAISE(ABORT, 'tombstones of erasures are kept'); END"""
                for verb in ("update", "delete")
            ),
            # The child being erased, only inside erase_child's own statements (empty
            # otherwise): histories, closings, consents and emergency accesses stay
            # undeletable except for the child named here.
            """CREATE TABLE child_erasing (
                child_id TEXT PRIMARY KEY,
                child INTEGER
            )""",
            "DROP TRIGGER child_event_no_delete",
            "DROP TRIGGER child_closure_no_delete",
            "DROP TRIGGER consent_no_delete",
            "DROP TRIGGER breakglass_no_delete",
            *(
                f"""CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
                   WHEN OLD.child NOT IN (SELECT child FROM child_erasing WHERE child IS NOT NULL)
                   BEGIN SELECT RAISE(ABORT, 'histories and closings are kept'); END"""
                for table in ("child_event", "child_closure")
            ),
            """CREATE TRIGGER consent_no_delete BEFORE DELETE ON consent
               WHEN OLD.child_id NOT IN (SELECT child_id FROM child_erasing)
               BEGIN SELECT RAISE(ABORT, 'consents are kept'); END""",
            """CREATE TRIGGER breakglass_no_delete BEFORE DELETE ON breakglass
               WHEN OLD.child_id NOT IN (SELECT child_id FROM child_erasing)
               BEGIN SELECT RAISE(ABORT, 'emergency accesses are kept'); END""",
        ),
    ),
    Migration(
        12,
        "signing-key transitions: statements announcing a new audit, extract or upload key",
        (
            # Append-only: each row is a note signed by the old and the new key; the
            # number of rows of a key is its generation minus one (node/key_rotation.py).
            """CREATE TABLE key_transition (
                seq INTEGER PRIMARY KEY,
                which TEXT NOT NULL CHECK (which IN ('audit', 'extract', 'upload')),
                note TEXT NOT NULL
            )""",
            *(
                f"""CREATE TRIGGER key_transition_no_{verb}
                   BEFORE {verb.upper()} ON key_transition
                   BEGIN SELECT RAISE(ABORT, 'key transitions are kept'); END"""
                for verb in ("update", "delete")
            ),
        ),
    ),
)

_CREATE_TABLE: Final = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at TEXT NOT NULL
)"""


def applied_versions(conn: Connection) -> list[int]:
    """The versions already applied to the database, ascending."""
    conn.execute(_CREATE_TABLE)
    rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    return [int(version) for (version,) in rows]


def apply(conn: Connection, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Apply, in order, each migration not yet applied; return the versions applied now.

    ``conn`` must be in autocommit mode (``isolation_level=None``): each migration opens
    its own ``BEGIN IMMEDIATE`` transaction and commits it with its ``schema_migrations``
    row, or rolls both back.
    """
    versions = [m.version for m in migrations]
    if versions != sorted(set(versions)):
        raise ValueError("migration versions must be unique and ascending")
    done = set(applied_versions(conn))
    newly: list[int] = []
    for migration in migrations:
        if migration.version in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations(version, description, applied_at) VALUES (?, ?, ?)",
                (
                    migration.version,
                    migration.description,
                    dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                ),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        newly.append(migration.version)
    return newly
