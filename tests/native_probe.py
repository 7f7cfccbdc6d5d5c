"""What the compiled import modules compute, in a fresh process (tests/unit/test_native.py).

``python -m tests.native_probe`` converts a varied stream of import records (every code
of every list, awkward text, bad rows of each kind), seals each good row with fixed keys
and a fixed random source, and imports the stream into a memory store; it prints which
modules ran compiled and a digest of every result. Run once as built and once with
``CHILDREG_PURE=1``, the two digests must be equal: the compiled modules compute exactly
what their source does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import os
from collections.abc import Iterator

from childreg import codes
from childreg.errors import ImportRejected
from childreg.models import ImportRecord
from childreg.v1 import records_pb2 as pb
from node import native
from node.convert import import_record_from_proto, records_from_import_stream
from node.keys import Kek, Keyring
from node.records import Registry, RowSealer
from node.store.memory import MemoryStore

#: Names that exercise canonical JSON: quotes, backslashes, non-ASCII, astral characters.
NAMES = ("Aysel", 'Ay"sel', "Ay\\sel", "Məmmədova", "Ü ğ ş", "Zoë 😀", "  padded  ", "O'Neil")


def _fake_urandom() -> Iterator[bytes]:
    counter = itertools.count()
    while True:
        yield hashlib.sha256(next(counter).to_bytes(8, "big")).digest()


def _deterministic_random() -> None:
    stream = _fake_urandom()

    def urandom(n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += next(stream)
        return out[:n]

    os.urandom = urandom  # the probe's own process only


def record(i: int) -> pb.ImportRecord:
    """Row ``i`` of the probe's stream: codes and texts cycle through their lists."""
    cid = f"P{i:05d}"
    forms, districts = codes.EDUCATION_FORMS, codes.DISTRICTS
    m = pb.ImportRecord(line=i + 2)
    m.child.child_id = cid
    m.child.national_id = f"AZ{i:08d}" if i % 3 else ""
    m.child.given_name = NAMES[i % len(NAMES)]
    m.child.family_name = NAMES[(i + 3) % len(NAMES)]
    m.child.date_of_birth = (dt.date(2008, 1, 1) + dt.timedelta(days=(37 * i) % 5000)).isoformat()
    m.child.sex = codes.SEXES[i % len(codes.SEXES)]
    m.child.district = districts[i % len(districts)]
    m.child.guardian_name = NAMES[(i + 1) % len(NAMES)] if i % 4 else ""
    m.child.guardian_phone = "+994 12 555 00 00" if i % 5 else ""
    m.placement.child_id = cid
    m.placement.academic_year = "2023/24" if i % 7 else "2019/20"
    m.placement.education_form = forms[i % len(forms)]
    m.placement.institution = f"School {i}" if i % 2 else ""
    if i % 6:
        m.care.child_id = cid
        m.care.care_setting = codes.CARE_SETTINGS[i % len(codes.CARE_SETTINGS)]
        m.care.since = m.child.date_of_birth
    if i % 4:
        a = m.assessment
        a.child_id = cid
        a.assessment_date = "2023-05-02"
        a.commission = f"Commission {NAMES[i % len(NAMES)]}"
        a.impairment_band = codes.IMPAIRMENT_BANDS[i % len(codes.IMPAIRMENT_BANDS)]
        a.icf_codes.extend(["d140.2", "b167.3", "e310+3"][: i % 4])
        a.diagnoses.extend(["F84.0", "G80.1"][: i % 3])
        for j, domain in enumerate(codes.FUNCTIONING_DOMAINS[: i % 9]):
            levels = (
                codes.FREQUENCY_LEVELS
                if domain in codes.FREQUENCY_DOMAINS
                else codes.DIFFICULTY_LEVELS
            )
            a.functioning.add(domain=domain, level=levels[(i + j) % len(levels)])
        a.recommended_form = forms[(i + 1) % len(forms)] if i % 2 else ""
        a.supports.extend(codes.SUPPORTS[: i % 4])
        a.accommodations.extend(codes.ACCOMMODATIONS[: i % 3])
        a.next_review = "2024-05-02" if i % 3 else ""
    return m


def spoiled(i: int, m: pb.ImportRecord) -> None:
    """Make row ``i`` bad in one of several ways (or leave it, for most rows)."""
    kind = i % 23
    if kind == 1:
        m.child.date_of_birth = "2015-02-30"
    elif kind == 2:
        m.placement.education_form = "no_such_form"
    elif kind == 3:
        m.assessment.diagnoses.append("not a code")
    elif kind == 4:
        m.child.given_name = "tab\tinside"
    elif kind == 5:
        m.child.child_id = "P00000"  # a duplicate of row 0 (and a mismatched child id)
    elif kind == 6:
        m.assessment.functioning.add(domain="seeing", level="daily")
    elif kind == 7:
        m.child.family_name = "x" * 101


def main() -> dict[str, object]:
    _deterministic_random()
    keyring = Keyring(Kek(bytes(range(32))), bytes(32), bytes([7]) * 32)
    sealer = RowSealer(keyring)
    digest = hashlib.sha256()
    good = [record(i) for i in range(400)]
    for message in good:
        item = import_record_from_proto(message)
        assert isinstance(item, ImportRecord)
        digest.update(repr(sealer.row(item)).encode())
    bad = [record(i) for i in range(400)]
    for i, message in enumerate(bad):
        spoiled(i, message)
        digest.update(repr(import_record_from_proto(message)).encode())
    registry = Registry(MemoryStore(), keyring)
    imported = registry.import_records(records_from_import_stream(_stream(good)))
    try:
        registry.import_records(records_from_import_stream(_stream(bad)))
    except ImportRejected as exc:
        digest.update(repr(exc.violations).encode())
    return {
        "compiled": native.compiled_modules(),
        "imported": imported,
        "digest": digest.hexdigest(),
    }


def _stream(records: list[pb.ImportRecord]) -> Iterator[pb.ImportBatch]:
    for start in range(0, len(records), 128):
        batch = pb.ImportBatch()
        batch.records.extend(records[start : start + 128])
        yield batch
    yield pb.ImportBatch(last=True, total_records=len(records))


if __name__ == "__main__":
    print(json.dumps(main()))
