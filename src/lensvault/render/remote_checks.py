"""Human output of ``status --remote``, ``verify --remote`` and ``gc --remote``: the facts ``--json`` prints."""

from __future__ import annotations

from lensvault.grace import DEFAULT_GRACE_SECONDS
from lensvault.render._text import human_bytes, line

__all__ = ["gc", "status", "verify"]

SHOWN = 20


def _rest(out, items: list, shown: int = SHOWN) -> None:
    if len(items) > shown:
        line(out, f"  … and {len(items) - shown} more (all of them: --json)")


def _oids(oids: list[str], n: int = 3) -> str:
    return ", ".join(o[:12] + "…" for o in oids[:n]) + (f" … and {len(oids) - n} more" if len(oids) > n else "")


def _item(x: dict) -> str:
    if x["name"] is None:
        oids = f": {_oids(x['oids'])}" if x.get("oids") else ""
        return f"{x['kind']}  {x['records']} record(s){oids}"
    to = f" -> {x['to']}" if x.get("to") else ""
    return f"{x['kind']}  {x['name']}{to}"


def status(st, out) -> None:
    line(out, f"Remote {st.remote} ({st.url}): " + ("in sync with this vault" if st.in_sync else
              f"{len(st.not_pushed)} not pushed, {len(st.not_pulled)} not pulled, {len(st.conflicts)} conflict(s)"))
    if st.conflicts:
        line(out, "Conflicts (neither a push nor a pull settles them):")
        for c in st.conflicts[:SHOWN]:
            if c["kind"] == "alias":
                line(out, f"  alias  {c['name']}: {c['here']} here, {c['remote']} on the remote (both moved since "
                          f"they agreed; take the remote's with `lensvault pull {c['name']} --remote {st.remote}`, "
                          "then promote again if yours should win, and push)")
            else:
                line(out, f"  {c['kind']}  {c['name']}: record {c['here'][:12]}… here, {c['remote'][:12]}… on the "
                          "remote (a version is written once: register yours under another version)")
        _rest(out, st.conflicts)
    if st.not_pushed:
        line(out, f"Not pushed (push them with `lensvault push --all --remote {st.remote}`):")
        for x in st.not_pushed[:SHOWN]:
            line(out, f"  {_item(x)}")
        _rest(out, st.not_pushed)
    if st.not_pulled:
        line(out, f"Not pulled (bring one with `lensvault pull REF --remote {st.remote}`):")
        for x in st.not_pulled[:SHOWN]:
            line(out, f"  {_item(x)}")
        _rest(out, st.not_pulled)
    if st.events_not_pushed:
        line(out, f"Also {st.events_not_pushed} event batch(es) of this vault not pushed (history only; "
                  "`lensvault push --all` sends them)")
    same = [s["ref"].split("/", 1)[1] for s in st.same_name if s["same_content"]]
    for ref in same[:SHOWN]:
        line(out, f"  same content, made here and there: {ref}")
    _rest(out, same)


def verify(rep, out) -> None:
    for m in rep.missing[:SHOWN]:
        line(out, f"MISSING  {m['key']}  ({m['what']}) needed by {_names(m['needed_by'])}")
        line(out, f"         fix: {m['fix']}")
    _rest(out, rep.missing)
    for c in rep.corrupt[:SHOWN]:
        line(out, f"CORRUPT  {c['key']}  ({c['what']}: {c['problem']})"
                  + (f" needed by {_names(c['needed_by'])}" if c["needed_by"] else " named by nothing"))
        line(out, f"         fix: {c['fix']}")
    _rest(out, rep.corrupt)
    how = "re-hashed" if rep.hashed else "listed (add --hash to re-hash them)"
    line(out, f"{'OK' if rep.ok else 'FAILED'}: remote {rep.remote} ({rep.url}), {rep.checked} objects {how} for "
              f"{rep.refs} ref(s) and {rep.records} record(s); {len(rep.missing)} missing, {len(rep.corrupt)} corrupt")


def _names(names: list[str], n: int = 5) -> str:
    if not names:
        return "-"
    return ", ".join(names[:n]) + (f" … and {len(names) - n} more" if len(names) > n else "")


def gc(result, out) -> None:
    plan, done = result.plan, result.executed
    line(out, f"Remote {plan.remote} ({plan.url}): {len(plan.objects)} objects nothing there names, "
              f"older than {plan.grace_seconds:g} s, {human_bytes(plan.bytes)}; {plan.kept} kept (named by a ref "
              f"or record), {plan.young} younger than the grace period kept ({human_bytes(plan.young_bytes)})")
    for o in plan.objects[:SHOWN]:
        line(out, f"  {o['key']}  {human_bytes(o['size'])}  {o['age_seconds']} s old")
    _rest(out, plan.objects)
    if done:
        line(out, f"Deleted {done['deleted']} objects, freed {human_bytes(done['bytes'])}."
                  + (f" {done['packs_rewritten']} pack(s) rewritten without them as {done['packs_written']} new pack(s)."
                     if done.get("packs_rewritten") else ""))
        for x in done["needed_after"][:SHOWN]:
            line(out, f"NEEDED   {x['key']}  by {_names(x['needed_by'])} (pushed while gc ran, relying on it)")
        _rest(out, done["needed_after"])
        if done["needed_after"]:
            line(out, "fix: in a vault that has them, run `lensvault push --all --check-remote` (it sends what "
                      "the remote lacks, also what a deleted manifest listed)")
    elif plan.objects:
        grace = plan.grace_seconds
        again = (f"lensvault gc --remote {plan.remote} --yes" + (f" --grace {grace:g}" if grace != DEFAULT_GRACE_SECONDS else "")
                 + (" --force" if result.force else ""))
        line(out, f"Nothing deleted. Run `{again}` to delete them.")
