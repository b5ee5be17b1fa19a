"""Human output of the model registry: register, show, list, promote, rollback, history, pull."""

from __future__ import annotations

from lensvault.render._text import count, human_bytes, line, table

__all__ = ["history", "model", "models", "promoted", "pulled", "registered", "rolled_back"]


def registered(m, out, err) -> None:
    why = (m.bundle.get("bump_decision") or {}).get("reasons") or {}
    reasons = "; ".join(r for k in ("major", "minor", "patch") for r in why.get(k, [])) or "no change"
    line(out, f"Registered {m.ref}" + (f" ({m.bump.upper()} from {m.bundle['previous_version']}: {reasons})"
                                       if m.bump else " (first version)"))
    line(out, f"  run {m.run_id}, dataset {m.dataset}, config {m.config_id}, bundle {m.bundle_oid[:12]}")
    for f in m.files:
        line(out, f"  {f['role']}: {f['name']} ({human_bytes(f['size'])})")
    thresholds = m.bundle.get("thresholds") or {}
    if thresholds:
        line(out, "  thresholds: " + ", ".join(f"{k}={v}" for k, v in thresholds.items()))
    for c in m.bundle.get("caveats") or []:
        line(out, f"  caveat: {c}")
    if m.forced:
        line(err, f"  forced: {m.bundle.get('forced_reason')}")
    if m.dirty:
        line(err, "  marked dirty: the run used uncommitted code")


def model(m, out) -> None:
    line(out, m.release_notes.rstrip())
    _metric_sources(out, m)
    line(out, "\n## Files\n")
    for f in m.files:
        line(out, f"- {f['name']} ({f['role']}, {human_bytes(f['size'])}) sha256:{f['sha256']}")
    line(out, f"\nbundle sha256:{m.bundle_oid}" + (f"   aliases: {', '.join(m.aliases)}" if m.aliases else ""))


def _metric_sources(out, m) -> None:
    """Evaluations of the version or its run (also those recorded after registration), each with its
    source; and a warning when the release notes predate recorded sources."""
    if any(g["source"]["kind"] == "unrecorded" for g in m.metrics):
        line(out, "\n> The metrics above were recorded before LensVault recorded metric sources: they merge values "
                  "logged by the run with its evaluations. The evaluations, each with its data, follow.")
    line(out, "\n## Evaluations\n")
    for e in m.evaluations:
        ov = e["overall"]
        line(out, f"- {e['source']['label']}: " + ", ".join(f"{k}={ov[k]:.4f}" for k in ("AP", "AP50", "AP75")
                                                           if isinstance(ov.get(k), (int, float))))
    if not m.evaluations:
        line(out, f"- none recorded (lensvault eval --model {m.ref} --dataset NAME@VER --split test --predictions FILE)")


def models(versions, out) -> None:
    rows = versions.to_dict()
    if not rows:
        line(out, "No models registered yet.")
        return
    t = table("model", "run", "dataset", "config", "aliases", "created")
    for r in rows:
        flags = " (forced)" * r["forced"] + " (dirty)" * r["dirty"]
        t.add_row(r["ref"] + flags, r["run_id"], r["dataset"] or "-", r["config_id"] or "-", ", ".join(r["aliases"]),
                  r["created_at"][:19].replace("T", " "))
    out.print(t)


def promoted(move, out) -> None:
    if move.from_version == move.to_version:
        # Recorded (a re-affirmation, with its reason) but not a move: say so, or it reads as one.
        line(out, f"{move.name}@{move.alias} already pointed at {move.to_version}: re-affirmed and recorded, "
                  "nothing moved (a rollback will not return to it)" + (f"  ({move.reason})" if move.reason else ""))
        return
    line(out, f"{move.name}@{move.alias}: {move.from_version or '(new)'} → {move.to_version}"
              + (f"  ({move.reason})" if move.reason else ""))


def rolled_back(move, out) -> None:
    line(out, f"{move.name}@{move.alias}: rolled back {move.from_version} → {move.to_version}"
              + (f"  ({move.reason})" if move.reason else ""))
    line(out, f"  {move.alias} has held: {', '.join(move.held)} (oldest first)")
    line(out, f"  a further rollback would go to {move.next_rollback}" if move.next_rollback
         else "  no earlier version left to roll back to")


def history(moves, out) -> None:
    if not moves:
        line(out, f"No alias of {moves.name} has been moved yet.")
        return
    t = table("when", "alias", "action", "from", "to", "who", "why")
    for m in moves:
        t.add_row(m.at[:19].replace("T", " "), m.alias, m.action, m.from_version or "-", m.to_version, m.actor,
                  m.reason or "")
    out.print(t)


def pulled(result, out) -> None:
    line(out, f"Pulled {result.ref} into {result.dest}: {count(len(result.files), 'file')} + bundle.json, all hashes verified")
    for f in result.files:
        line(out, f"  {f['name']} ({f['role']}, {human_bytes(f['size'])}) sha256:{f['sha256']}")
    line(out, f"  bundle.json sha256:{result.bundle_oid}")
