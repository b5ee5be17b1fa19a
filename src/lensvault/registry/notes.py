"""Release notes: generated from lineage, never typed by hand.

Every model version gets them: the dataset version and what changed in the data since
the previous model's dataset, the code commit, the config ID and the keys that changed,
metrics — one table per source (an evaluation: its id, dataset@version and split; or what
the run logged), with deltas against the previous version's metrics from a comparable
source (overall, per class, per slice) — and the caveats given at registration.
"""

from __future__ import annotations

from lensvault.refs import Ref, SemVer

__all__ = ["dataset_changelog", "metric_deltas", "render_notes"]


def metric_deltas(prev, new) -> list[dict]:
    """Each metric group of the new version (one per source: an evaluation, or what the run
    logged) with deltas against the previous version's comparable group.

    ``[{"source", "compared_with" (a source or None), "same_data", "overall": {key: {"value",
    "previous", "delta"}}, "per_class": {cls: {...}}, "per_slice": {...}}]``. Groups pair as
    lensvault.runs.metric_sources.comparable says: an evaluation with one on the same dataset
    and split, what a run logged with what the previous run logged; never across sources.
    """
    from lensvault.runs.metric_sources import comparable, groups_of

    previous_groups = groups_of(prev) if prev else []

    def one(a: dict, b: dict) -> dict:
        out = {}
        for key in sorted(set(a) | set(b)):
            value, previous = b.get(key), a.get(key)
            delta = value - previous if isinstance(value, (int, float)) and isinstance(previous, (int, float)) else None
            out[key] = {"value": value, "previous": previous, "delta": None if delta is None else round(delta, 10)}
        return out

    out = []
    for group in groups_of(new):
        match = comparable(group, previous_groups)
        old = match[0] if match else {}
        entry = {"source": group["source"], "compared_with": old.get("source"),
                 **({"task": group["task"]} if group.get("task") else {}),
                 "same_data": match[1] if match else None,
                 "overall": one(old.get("overall") or {}, group.get("overall") or {})}
        for part in ("per_class", "per_slice"):
            a, b = old.get(part) or {}, group.get(part) or {}
            entry[part] = {name: one(a.get(name) or {}, b.get(name) or {}) for name in sorted(set(a) | set(b))}
        out.append(entry)
    return out


def dataset_changelog(conn, previous: str | None, current: str | None) -> list[dict]:
    """The dataset versions after ``previous`` up to ``current`` (same dataset), with their summaries.

    Going back to an older version lists the versions being left out, marked ``reverted``.
    """
    from lensvault.datasets.versions import list_versions

    if not current:
        return []
    cur = Ref.parse(current)
    prev = Ref.parse(previous) if previous else None
    if prev is not None and prev.name != cur.name:
        return [{"ref": current, "summary": f"a different dataset (was {previous})", "reverted": False}]
    lo = prev.version if prev is not None and prev.version else None
    hi = cur.version
    if lo is not None and hi is not None and hi < lo:
        lo, hi, reverted = hi, lo, True
    else:
        reverted = False
    out = []
    for v in list_versions(conn, cur.name):
        s = SemVer.parse(v.version)
        if (lo is None or s > lo) and (hi is None or s <= hi):
            summary = (v.changelog or {}).get("summary") if isinstance(v.changelog, dict) else None
            out.append({"ref": v.ref, "summary": summary or v.notes or ("initial version" if not v.parent else "no changelog"),
                        "bump": v.bump, "reverted": reverted})
    return out


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4f}".rstrip("0").rstrip(".") if abs(v) < 1e6 else f"{v:.4g}"
    return str(v)


def _fmt_delta(d) -> str:
    if d is None:
        return ""
    return ("+" if d > 0 else "") + _fmt(d) if d else "±0"


def _metrics_section(groups: list[dict], prev: str | None) -> list[str]:
    """One table per source of metrics, each titled with that source; deltas only against the
    previous version's group from a comparable source, named under the table."""
    if not groups:
        return []
    lines = ["", "## Metrics", "", "Each table says where its numbers come from."]
    for g in groups:
        lines += ["", f"### {_cap(g['source']['label'])}", "",
                  "| metric | value | Δ" + (f" vs {prev}" if prev else "") + " |", "|---|---|---|"]
        lines += [f"| {k} | {_fmt(d['value'])} | {_fmt_delta(d['delta'])} |" for k, d in g["overall"].items()]
        if prev:
            old = g.get("compared_with")
            if old is None:
                lines += ["", f"Δ: {prev} recorded no metrics from a comparable source."]
            else:
                lines += ["", f"Δ against {prev}: {old['label']}" + ("." if g.get("same_data") else " (not the same data).")]
        for part, title in (("per_class", "Per class"), ("per_slice", "Per slice")):
            if g.get(part):
                lines += ["", f"#### {title}", "", "| " + part[4:] + " | metric | value | Δ |", "|---|---|---|---|"]
                for name, metrics in g[part].items():
                    lines += [f"| {name} | {k} | {_fmt(d['value'])} | {_fmt_delta(d['delta'])} |" for k, d in metrics.items()]
    return lines


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def render_notes(m: dict) -> str:
    """Markdown for a bundle manifest ``m`` (see register.py for its fields)."""
    prev = m.get("previous_version")
    lines = _heading(m, prev) + _task(m) + _lineage(m, prev) + _config_changes(m, prev) + _dataset_changes(m, prev)
    lines += _metrics_section(m.get("metric_deltas") or [], prev)
    lines += _thresholds(m) + _caveats(m)
    return "\n".join(lines) + "\n"


def _heading(m: dict, prev: str | None) -> list[str]:
    """Title, the bump with the reasons it was chosen, and the warnings registration gave."""
    bump = m.get("bump") or "initial"
    decision = m.get("bump_decision") or {}
    head = f"**{bump.upper()}**" + (f" from {prev}" if prev else " — first version")
    if decision.get("reasons"):
        why = "; ".join(r for k in ("major", "minor", "patch") for r in decision["reasons"].get(k, []))
        head += f": {why}"
    lines = [f"# {m['name']} {m['version']}", "", head + "."]
    if m.get("forced"):
        lines += ["", f"> Forced: {m['forced_reason']}"]
    if m.get("dirty"):
        lines += ["", "> Registered from a run on uncommitted code (--allow-dirty): it cannot be rebuilt exactly."]
    return lines


def _task(m: dict) -> list[str]:
    """The task, its outputs and its headline metrics (AP/AP50, mIoU, accuracy and macro-F1) from
    the latest evaluation of that task, named."""
    from lensvault.evaluations.tasks import HEADLINE

    task = m.get("task")
    if not task:
        return []
    schema = m.get("output_schema") or {}
    lines = ["", f"**Task:** {task} — outputs: {', '.join(schema.get('outputs', []))}"]
    groups = [g for g in (m.get("metric_deltas") or [])
              if g["source"].get("kind") == "evaluation" and g.get("task", "detection") == task]
    if groups:
        g = groups[-1]
        shown = ", ".join(f"{k} {_fmt(g['overall'].get(k, {}).get('value'))}" for k in HEADLINE[task])
        lines.append(f"**Headline:** {shown} ({g['source']['label']})")
    return lines


def _lineage(m: dict, prev: str | None) -> list[str]:
    """Run, dataset, code and config, each with the previous model's where it differs."""
    dataset = f"- Dataset: `{m.get('dataset') or 'none'}`"
    if prev and m.get("previous_dataset") != m.get("dataset"):
        dataset += f" (previous model: `{m['previous_dataset']}`)"
    config = f"- Config: `{m.get('config_id') or 'none'}`"
    if prev and m.get("previous_config_id") != m.get("config_id"):
        config += f" (previous: `{m['previous_config_id']}`)"
    code = f"- Code: `{m.get('code_commit') or 'unknown'}`" + (" (dirty)" if m.get("dirty") else " (clean)")
    lines = ["", "## Lineage", "", f"- Run: `{m['run_id']}`", dataset, code, config]
    if m.get("architecture"):
        lines.append(f"- Architecture: `{m['architecture']}`")
    return lines


def _config_changes(m: dict, prev: str | None) -> list[str]:
    """The config keys changed, added and removed since the previous version (none: no section)."""
    changes = (m.get("bump_decision") or {}).get("config_changes") or {}
    if not any(changes.get(k) for k in ("changed", "added", "removed")):
        return []
    lines = ["", "## Config changes" + (f" since {prev}" if prev else ""), ""]
    lines += [f"- `{k}`: {_fmt(v['from'])} → {_fmt(v['to'])}" for k, v in (changes.get("changed") or {}).items()]
    lines += [f"- `{k}`: added ({_fmt(v)})" for k, v in (changes.get("added") or {}).items()]
    lines += [f"- `{k}`: removed (was {_fmt(v)})" for k, v in (changes.get("removed") or {}).items()]
    return lines


def _dataset_changes(m: dict, prev: str | None) -> list[str]:
    """The dataset versions between the previous model's data and this one's (none: no section)."""
    log = m.get("dataset_changelog") or []
    if not log:
        return []
    lines = ["", "## Dataset changes" + (f" since {m.get('previous_dataset')}" if prev else ""), ""]
    for entry in log:
        mark = " (left out: the model goes back to an older version)" if entry.get("reverted") else ""
        lines.append(f"- `{entry['ref']}`: {entry['summary']}{mark}")
    return lines


def _thresholds(m: dict) -> list[str]:
    if not m.get("thresholds"):
        return []
    return ["", "## Thresholds", ""] + [f"- `{k}` = {_fmt(v)}" for k, v in m["thresholds"].items()]


def _caveats(m: dict) -> list[str]:
    """The caveats given at registration, and weights the run did not record (always a section)."""
    caveats = list(m.get("caveats") or [])
    if m.get("weights_unverified"):
        caveats.append("weights not recorded by the run: " + ", ".join(m["weights_unverified"])
                       + " (hash not checked against the run)")
    return ["", "## Known caveats", ""] + ([f"- {c}" for c in caveats] or ["- none recorded"])
