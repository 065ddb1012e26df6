"""Tables of the exchange domain."""
