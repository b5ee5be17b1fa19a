"""The metadata index: SQLAlchemy Core on SQLite (default) or PostgreSQL (by URL).

The store is the truth and the catalog is an index of it; write-once rules live
here as unique constraints and triggers, so they hold for every client.
"""

from lensvault.catalog.catalog import Catalog, utcnow

__all__ = ["Catalog", "utcnow"]
