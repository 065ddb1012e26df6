"""Shared platform code of govhub: settings, database, identity, errors, storage, audit, metrics.

Nothing in this package imports a domain package (catalog_registry, exchange, seal, certhub).
"""
