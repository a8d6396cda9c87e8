"""Async triggers: model calls that wait in the triggerer instead of holding a worker slot."""
