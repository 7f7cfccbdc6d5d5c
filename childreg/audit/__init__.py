"""The tamper-evident audit log's pure parts: hashing, proofs and their verification.

Nothing here touches storage, the network or the clock; the node backs the Merkle tree with its
own database and the auditor's tools verify proofs with the same code (RFC 9162 §2.1).
"""
