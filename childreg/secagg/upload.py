"""A masked upload of a secure-aggregation round: signed by its node, checked by the coordinator.

Why this module exists: the coordinator sums the uploads of a round blindly — one flipped
bit in one upload would turn the national table into noise, and a forged upload under a
department's name would let anyone skew it. So each node signs the serialized
``ShareBody`` (its masked vector and everything the vector is bound to: federation,
department, round, catalogue version, table, snapshot, dimensions, roster version and the
participant set) with its upload key (Ed25519, listed in the signed roster), under a domain
prefix of its own so that no other signature of the node can pass as an upload. Both sides
use this one module: the node to sign, the coordinator to open.
"""

from __future__ import annotations

from typing import Final

import nacl.exceptions
from nacl.signing import SigningKey, VerifyKey

from childreg.errors import PermissionDenied
from childreg.v1 import statistics_pb2 as spb

__all__ = ["SIGNING_CONTEXT", "open_share", "sign_share"]

#: Prefixed to the body before signing: an upload signature signs nothing else.
SIGNING_CONTEXT: Final = b"childreg secagg share v1\n"
#: Ed25519 signatures are 64 bytes.
_SIGNATURE_BYTES: Final = 64


def sign_share(body: spb.ShareBody, key: SigningKey) -> spb.MaskedShare:
    """The signed upload: ``body`` serialized deterministically, and its signature."""
    raw = body.SerializeToString(deterministic=True)
    return spb.MaskedShare(body=raw, signature=key.sign(SIGNING_CONTEXT + raw).signature)


def open_share(share: spb.MaskedShare, key: VerifyKey) -> spb.ShareBody:
    """The upload's body once its signature verifies under ``key``.

    PermissionDenied if the signature is missing, malformed or does not verify (one
    flipped bit anywhere in the body or the signature), or if the body does not parse.
    Nothing of the body is read before the signature is checked.
    """
    if len(share.signature) != _SIGNATURE_BYTES:
        raise PermissionDenied("the upload's signature is missing or malformed")
    try:
        key.verify(SIGNING_CONTEXT + share.body, share.signature)
    except nacl.exceptions.BadSignatureError:
        raise PermissionDenied("the upload's signature does not verify") from None
    body = spb.ShareBody()
    try:
        body.ParseFromString(share.body)
    except Exception:  # protobuf raises DecodeError (no stable base class across backends)
        raise PermissionDenied("the signed upload does not parse") from None
    return body
