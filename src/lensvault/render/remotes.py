"""Human output of remote, push, pull and clone."""

from __future__ import annotations

from lensvault.render._text import human_bytes, line

__all__ = ["added", "cloned", "fetched", "listing", "pulled", "pushed", "removed"]


def _remote(r) -> str:
    extra = [f"endpoint {r.endpoint_url}" if r.endpoint_url else "", f"region {r.region}" if r.region else ""]
    extra_text = ", ".join(e for e in extra if e)
    return f"{r.name}  {r.url}" + (f"  ({extra_text})" if extra_text else "") + ("  [default]" if r.default else "")


def added(r, out) -> None:
    line(out, f"Added remote {_remote(r)}")
    if r.note:
        line(out, f"Note: {r.note}")


def removed(r, out) -> None:
    line(out, f"Removed remote {r.name} ({r.url}); nothing on it was deleted")


def listing(remotes, out) -> None:
    if not remotes:
        line(out, "No remotes. Add one: lensvault remote add origin s3://BUCKET/PREFIX")
    for r in remotes:
        line(out, _remote(r))


def _some(names: list[str], n: int = 8) -> str:
    return ", ".join(names[:n]) + (f" … and {len(names) - n} more" if len(names) > n else "")


def pushed(res, out) -> None:
    if not (res.objects_sent or res.records_sent or res.refs_created or res.refs_present or res.same_content
            or res.aliases_moved or res.objects_replaced):
        line(out, f"Nothing new to push to {res.remote} ({res.url}): all {res.records_present} record(s) "
                  "are there already, complete" + (" (checked by one listing)" if res.listed else ""))
        return
    line(out, f"Pushed to {res.remote} ({res.url}): {res.objects_sent} object(s), {human_bytes(res.bytes_sent)}, "
              f"{res.records_sent} record(s)"
              + (f" in {res.packs_sent} pack(s)" if res.packs_sent else "")
              + f"; {res.objects_present} object(s) and {res.records_present} record(s) already there"
              + (" (checked by one listing)" if res.listed else "")
              + (f"; {res.objects_replaced} damaged object(s) there replaced" if res.objects_replaced else ""))
    if res.refs_created:
        line(out, f"  created: {_some(res.refs_created)}")
    if res.refs_present:
        line(out, f"  already there: {_some(res.refs_present)}")
    if res.same_content:
        line(out, f"  the same content was pushed by another vault first: {_some(res.same_content)}")
    if res.aliases_moved:
        line(out, f"  moved: {_some(res.aliases_moved)}")


def pulled(res, out) -> None:
    added = ", ".join(f"{n} {k}" for k, n in res.added.items()) or "nothing new"
    line(out, f"Pulled {', '.join(res.refs)} from {res.remote} ({res.url}): {res.records} record(s) ({added}); "
              f"{res.objects_fetched} object(s) fetched, {human_bytes(res.bytes_fetched)}, hash-checked; "
              f"{res.objects_present} already here")
    if res.same_content:
        line(out, f"  already here with the same content: {_some(res.same_content)}")
    if res.aliases_moved:
        line(out, f"  moved here to where the remote's points: {_some(res.aliases_moved)}")


def fetched(res, out) -> None:
    added = ", ".join(f"{n} {k}" for k, n in res.added.items()) or "nothing new"
    line(out, f"Fetched from {res.remote} ({res.url}): {res.records} record(s) ({added}); "
              f"{res.objects_fetched} object(s) of records, manifests and tables, {human_bytes(res.bytes_fetched)}, "
              "hash-checked")
    if res.objects_on_remote:
        line(out, f"  {res.objects_on_remote} data object(s) stay on {res.remote}: a checkout, `model pull` or "
                  "`reproduce` fetches what it needs; `lensvault pull REF` brings all of REF")
    if res.same_content:
        line(out, f"  already here with the same content: {_some(res.same_content)}")
    if res.aliases_created:
        line(out, f"  aliases created here as on {res.remote}: {_some(res.aliases_created)}")
    for d in res.aliases_differ[:20]:
        line(out, f"  {d['alias']} is {d['here']} here, {d['remote']} on {res.remote} (`lensvault pull {d['alias']}` "
                  "follows the remote)")
    if len(res.aliases_differ) > 20:
        line(out, f"  … and {len(res.aliases_differ) - 20} more")
    for c in res.conflicts:
        line(out, f"CONFLICT  {c['what']}")
        line(out, f"          where: {c['where']}")
        if c["left_out"]:
            line(out, f"          not fetched either (they need the remote's {c['ref']}): {_some(c['left_out'])}")
        line(out, f"          fix: {c['fix']}")
    if res.conflicts:
        line(out, f"{len(res.conflicts)} conflict(s): everything else was fetched")


def cloned(res, out) -> None:
    restored = ", ".join(f"{n} {k}" for k, n in res.restored.items()) or "nothing"
    line(out, f"Cloned {res.url} into {res.root}: {res.records} record(s), {res.objects_fetched} object(s), "
              f"{human_bytes(res.bytes_fetched)}, hash-checked")
    line(out, f"  catalog: {restored}")
    line(out, f"  remote {res.remote} is the default remote")
    for u in res.unproven[:20]:
        line(out, f"  not restored: {u['what']} ({u['where']}): {u['problem']}")
    if len(res.unproven) > 20:
        line(out, f"  … and {len(res.unproven) - 20} more")
