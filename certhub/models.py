"""Tables of the certhub domain."""
