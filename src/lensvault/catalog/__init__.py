"""The metadata index: SQLite (default) or PostgreSQL (by URL); writes through SQLAlchemy Core,
reads as SQL text that a SQLite catalog answers through the standard library (``sql.py``).

The store is the truth and the catalog is an index of it; write-once rules live
here as unique constraints and triggers, so they hold for every client.
"""

from lensvault.catalog.catalog import Catalog, utcnow

__all__ = ["Catalog", "utcnow"]
