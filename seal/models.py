"""Tables of the seal domain."""
