"""The model registry: versions, bundles, release notes, aliases (promotion and rollback)."""
