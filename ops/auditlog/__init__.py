"""The tamper-evident audit log: every audit record as a leaf of an append-only Merkle tree."""
