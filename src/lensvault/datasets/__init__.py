"""Dataset versions: snapshots of folders, their manifests, diffs, checkouts and status."""
