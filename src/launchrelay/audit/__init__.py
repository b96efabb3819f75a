"""The decision log: every decision the relay makes, as a leaf of an append-only Merkle tree (RFC 9162), with
signed tree heads, inclusion and consistency proofs, and the verifier the parties run on their own
(docs/audit-log.md)."""
