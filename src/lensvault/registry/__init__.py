"""The model registry: versions, bundles, release notes, aliases (promotion and rollback).

    register.py   run + weights + label map + settings -> an immutable bundle, NAME@X.Y.Z
    rules.py      which bump a change requires (MAJOR / MINOR / PATCH) and why
    notes.py      release notes: lineage, changed config keys, dataset changelog, metric deltas
    aliases.py    promote / rollback / history, every move recorded
    pull.py       a bundle back into a folder, every hash verified
    resolve.py    NAME@X.Y.Z, NAME@alias or NAME -> a model_versions row
    model.py      ModelVersion: what ``vault.model(ref)`` returns
"""
