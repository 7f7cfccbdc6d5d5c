"""The Erasure message's conversion (node/rpc/convert_history.py): round trip and refusal."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from childreg import codes
from childreg.errors import InvalidInput
from childreg.history import ErasureIn
from childreg.v1 import records_pb2 as pb
from node.rpc.convert_history import erasure_from_proto, erasure_to_proto

child_ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")


@given(child_id=child_ids, reason=st.sampled_from(codes.ERASE_REASONS))
def test_an_erasure_round_trips(child_id: str, reason: str) -> None:
    """erasure_to_proto then erasure_from_proto gives back the same erasure."""
    erasure = ErasureIn.model_validate({"child_id": child_id, "reason": reason})
    assert erasure_from_proto(erasure_to_proto(erasure)) == erasure


def test_a_missing_or_free_text_reason_is_refused_naming_it() -> None:
    """An empty reason or one that is not a code is InvalidInput naming ``reason``."""
    for reason in ("", "the guardian asked nicely"):
        with pytest.raises(InvalidInput) as caught:
            erasure_from_proto(pb.Erasure(child_id="C1", reason=reason))
        assert [v.field for v in caught.value.violations] == ["reason"]
