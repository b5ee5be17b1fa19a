"""Which version bump a model change requires, and why.

Compared with the previous version of the same model:

- MAJOR — what consumers of the model's output see changed: the architecture (the
  config key ``model.architecture``, else ``model.arch``/``architecture``/``arch``), the
  label map (class ids or names), the output schema (the ``output_schema`` /
  ``output`` section of the post-processing settings), or the task and its outputs
  (registry.task: detection → segmentation, keypoint names, ...).
- MINOR — same outputs, different behaviour: the dataset version, any other config
  value (hyperparameters), pre/post-processing settings or thresholds.
- PATCH — only code (the commit) or the weights changed; also the floor, since a new
  version must be higher than the one before.

The first rule that matches wins, so a change of both the dataset and the label map is
MAJOR, and every reason found is reported, not only the deciding one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lensvault.configs.values import canonical_bytes, diff_configs, flatten

__all__ = ["ARCHITECTURE_KEYS", "BumpDecision", "Facts", "architecture_of", "required_bump", "ORDER"]

ARCHITECTURE_KEYS = ("model.architecture", "model.arch", "architecture", "arch")
OUTPUT_SCHEMA_KEYS = ("output_schema", "output")
ORDER = {None: 0, "patch": 1, "minor": 2, "major": 3}


def architecture_of(config: dict | None) -> str | None:
    if not config:
        return None
    flat = flatten(config)
    for key in ARCHITECTURE_KEYS:
        if key in flat:
            return str(flat[key])
    return None


def output_schema_of(postprocess: dict | None):
    for key in OUTPUT_SCHEMA_KEYS:
        if postprocess and key in postprocess:
            return postprocess[key]
    return None


@dataclass(frozen=True)
class Facts:
    """What a model version is made of, for comparison with another."""

    dataset: str | None
    config_id: str | None
    config: dict | None
    code_commit: str | None
    label_map: dict
    preprocess: dict | None
    postprocess: dict | None
    thresholds: dict
    weights: tuple[str, ...]  # sha256 of each weights file, sorted
    task: str | None = None  # registry.task: None for bundles written before tasks were recorded
    outputs: dict | None = None  # registry.task.output_schema

    @property
    def architecture(self) -> str | None:
        return architecture_of(self.config)


@dataclass(frozen=True)
class BumpDecision:
    required: str  # major | minor | patch
    reasons: dict[str, list[str]] = field(default_factory=dict)  # kind -> reasons
    config_changes: dict = field(default_factory=dict)  # diff_configs() of the hyperparameters

    def to_dict(self) -> dict:
        return {"required": self.required, "reasons": self.reasons,
                "config_changes": _jsonable_diff(self.config_changes)}

    def explain(self) -> str:
        return "; ".join(self.reasons.get(self.required, [])) or "no change besides the weights"


def _same(a, b) -> bool:
    return canonical_bytes(a) == canonical_bytes(b)


def _classes(label_map: dict) -> list:
    return [(c["id"], c["name"]) for c in label_map.get("classes", [])]


def required_bump(prev: Facts, new: Facts) -> BumpDecision:
    reasons: dict[str, list[str]] = {"major": [], "minor": [], "patch": []}
    if prev.architecture != new.architecture:
        reasons["major"].append(f"architecture changed: {prev.architecture} → {new.architecture}")
    if _classes(prev.label_map) != _classes(new.label_map):
        reasons["major"].append(f"label map changed: {_describe_classes(prev.label_map, new.label_map)}")
    if not _same(output_schema_of(prev.postprocess), output_schema_of(new.postprocess)):
        reasons["major"].append("output schema changed")
    if prev.task is not None and new.task is not None and prev.task != new.task:
        reasons["major"].append(f"task changed: {prev.task} → {new.task}")
    elif prev.outputs is not None and new.outputs is not None and not _same(prev.outputs, new.outputs):
        reasons["major"].append("model outputs changed: " + ", ".join(
            k for k in sorted(set(prev.outputs) | set(new.outputs)) if prev.outputs.get(k) != new.outputs.get(k)))

    if prev.dataset != new.dataset:
        reasons["minor"].append(f"dataset changed: {prev.dataset} → {new.dataset}")
    changes = diff_configs(_hyper(prev.config), _hyper(new.config))
    keys = [*changes["changed"], *changes["added"], *changes["removed"]]
    if keys:
        shown = ", ".join(sorted(keys)[:8]) + (f" (+{len(keys) - 8} more)" if len(keys) > 8 else "")
        reasons["minor"].append(f"hyperparameters changed: {shown}")
    if not _same(_without_schema(prev.preprocess), _without_schema(new.preprocess)):
        reasons["minor"].append("pre-processing settings changed")
    if not _same(_without_schema(prev.postprocess), _without_schema(new.postprocess)):
        reasons["minor"].append("post-processing settings changed")
    if not _same(prev.thresholds, new.thresholds):
        reasons["minor"].append("thresholds changed")

    if prev.code_commit != new.code_commit:
        reasons["patch"].append(f"code changed: {_short(prev.code_commit)} → {_short(new.code_commit)}")
    if prev.weights != new.weights:
        reasons["patch"].append("weights changed")

    required = next((k for k in ("major", "minor") if reasons[k]), "patch")
    return BumpDecision(required, {k: v for k, v in reasons.items() if v}, changes)


def _hyper(config: dict | None) -> dict:
    flat = flatten(config or {})
    return {k: v for k, v in flat.items() if k not in ARCHITECTURE_KEYS}


def _without_schema(settings: dict | None) -> dict:
    return {k: v for k, v in (settings or {}).items() if k not in OUTPUT_SCHEMA_KEYS}


def _short(commit: str | None) -> str:
    return commit[:10] if commit else "none"


def _describe_classes(a: dict, b: dict) -> str:
    old, new = dict(_classes(a)), dict(_classes(b))
    parts = []
    added = [f"{new[i]}({i})" for i in new if i not in old]
    removed = [f"{old[i]}({i})" for i in old if i not in new]
    renamed = [f"{old[i]}→{new[i]}({i})" for i in old if i in new and old[i] != new[i]]
    if added:
        parts.append("added " + ", ".join(added))
    if removed:
        parts.append("removed " + ", ".join(removed))
    if renamed:
        parts.append("renamed " + ", ".join(renamed))
    return "; ".join(parts) or "class order changed"


def _jsonable_diff(changes: dict) -> dict:
    if not changes:
        return {}
    return {
        "added": changes.get("added", {}),
        "removed": changes.get("removed", {}),
        "changed": {k: {"from": a, "to": b} for k, (a, b) in changes.get("changed", {}).items()},
    }
