"""Tables of the catalog_registry domain."""
