"""The web UI: server-rendered pages, each drawn from the same ``Vault`` result its API twin
returns (the page's data is one ``/api/v1/…`` away), with SVG for images, charts and graphs.
Pages marked ``@on_loop`` are short reads (server/turns.py); the others run in worker threads."""

from __future__ import annotations

from functools import cache
from typing import Annotated
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from lensvault.server import svg
from lensvault.server.auth import check_csrf, csrf_of, principal_of, require
from lensvault.server.diff_view import changed_images
from lensvault.server.errors import HTTPProblem
from lensvault.server.formatting import metric
from lensvault.server.masks import mask_src
from lensvault.server.state import exact_ref
from lensvault.server.turns import on_loop

__all__ = ["error_page", "router"]

router = APIRouter(include_in_schema=False)
DIFF_PAGE = 12  # changed images per page of the diff
CHECK_ITEMS = 60  # duplicate groups and near pairs shown by the check page (the rest counted)


@cache
def _env():
    from jinja2 import Environment, PackageLoader, select_autoescape

    # auto_reload off: the templates are the package's own files, and checking each one's
    # modification time on every page was a stat per request (and a wait for the interpreter
    # lock after it, under load).
    env = Environment(loader=PackageLoader("lensvault.server", "templates"), autoescape=select_autoescape(),
                      trim_blocks=True, lstrip_blocks=True, auto_reload=False)
    env.globals.update(svg=svg, colours=svg.CHANGE_COLOURS, urlencode=urlencode, mask_src=mask_src)
    env.filters["metric"] = metric
    return env


def _page(request: Request, template: str, http_status: int = 200, **context) -> HTMLResponse:
    from markupsafe import Markup

    principal = getattr(request.state, "principal", None)
    credential = getattr(request.state, "credential", None)
    context.update(request=request, principal=principal, csrf=csrf_of(credential) if credential else "",
                   writer=bool(principal and principal.may("write") and credential), Markup=Markup)
    return HTMLResponse(_env().get_template(template).render(**context), status_code=http_status)


def error_page(request: Request, status: int, body: dict) -> HTMLResponse:
    return _page(request, "error.html", http_status=status, status_code=status, error=body)


def _thumb(sha: str, size: int = 256) -> str:
    return f"/api/v1/objects/{sha}/thumbnail?size={size}"


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", "replace")
    return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}


# -- home -------------------------------------------------------------------------------------
@router.get("/", response_class=HTMLResponse)
@on_loop
def home(request: Request):
    principal_of(request)
    v = request.app.state.lv.vault
    return _page(request, "home.html", datasets=v.datasets().to_dict(), models=v.models().to_dict(),
                 runs=v.runs(limit=10).to_dict(), events=list(reversed(v.events(limit=15).to_dict())))


# -- datasets ---------------------------------------------------------------------------------
@router.get("/datasets/{name}", response_class=HTMLResponse)
def dataset(request: Request, name: str):
    principal_of(request)
    return _page(request, "dataset.html", name=name, versions=request.app.state.lv.vault.dataset_log(name).to_dict())


@router.get("/datasets/{name}/{version}", response_class=HTMLResponse)
@on_loop
def version(request: Request, name: str, version: str, split: str | None = None, class_name: str | None = None,
            tag: str | None = None, after: int = 0):
    principal_of(request)
    st, ref = request.app.state.lv, f"{name}@{version}"
    details = st.cached(("details", ref, False), lambda: st.vault.dataset_details(ref), keep=exact_ref(ref)).to_dict()
    page = None
    if "images" in details:
        page = st.cached(("images", ref, split or None, class_name or None, tag or None, after, 48),
                         lambda: st.vault.images(ref, split=split or None, class_name=class_name or None,
                                                 tag=tag or None, after=after, limit=48),
                         keep=exact_ref(ref)).to_dict()
    filters = {k: v for k, v in (("split", split), ("class_name", class_name), ("tag", tag)) if v}
    class_bars = split_bars = ""
    if page is not None:
        ids = dict(zip(details["classes"], details["class_ids"]))
        per_class = [(c, counts.get("total", 0)) for c, counts in details["per_class"].items()]
        class_bars = svg.bars(per_class, colour_of=lambda i, c: svg.class_colour(ids.get(c, i) or 0))
        split_bars = svg.bars(list(details["splits"].items()))
    return _page(request, "version.html", name=name, version=version, d=details, page=page, filters=filters,
                 thumb=_thumb, class_bars=class_bars, split_bars=split_bars)


@router.get("/datasets/{name}/{version}/check", response_class=HTMLResponse)
def check(request: Request, name: str, version: str):
    """``dataset check``: exact and near duplicates side by side, those across splits first."""
    principal_of(request)
    st, ref = request.app.state.lv, f"{name}@{version}"
    rep = st.cached(("check", ref), lambda: st.vault.check(ref), keep=exact_ref(ref)).to_dict()
    exact = sorted(rep["exact"], key=lambda g: len(set(g["splits"])) == 1)[:CHECK_ITEMS]
    near = sorted(rep["near"], key=lambda n: n["split_a"] == n["split_b"])[:CHECK_ITEMS]
    paths = [p for g in exact for p in g["paths"]] + [p for n in near for p in (n["a"], n["b"])]
    shas = {p: i["sha256"] for p, i in st.vault.images_at(ref, paths).items.items()} if paths else {}
    return _page(request, "check.html", name=name, version=version, rep=rep, exact=exact, near=near, shas=shas,
                 thumb=_thumb)


@router.get("/datasets/{name}/{version}/images/{image_id}", response_class=HTMLResponse)
@on_loop
def image(request: Request, name: str, version: str, image_id: int):
    principal_of(request)
    img = request.app.state.lv.vault.image(f"{name}@{version}", image_id).to_dict()
    return _page(request, "image.html", name=name, version=version, img=img)


@router.get("/datasets/{name}/diff/{a}/{b}", response_class=HTMLResponse)
def diff(request: Request, name: str, a: str, b: str, page: int = 0):
    principal_of(request)
    st = request.app.state.lv
    ra, rb = f"{name}@{a}", f"{name}@{b}"
    d = st.cached(("diff", ra, rb), lambda: st.vault.compare_datasets(ra, rb),
                  keep=exact_ref(ra) and exact_ref(rb)).to_dict()
    changed: list[dict] = []
    total = 0
    if "annotations" in d:
        changed, total = changed_images(st.vault, ra, rb, d, page * DIFF_PAGE, (page + 1) * DIFF_PAGE)
    return _page(request, "diff.html", name=name, a=a, b=b, d=d, changed=changed, total=total, page=page,
                 per_page=DIFF_PAGE, thumb=_thumb)


# -- runs -------------------------------------------------------------------------------------
@router.get("/runs", response_class=HTMLResponse)
def runs(request: Request, dataset: str | None = None, status: str | None = None):
    principal_of(request)
    items = request.app.state.lv.vault.runs(dataset=dataset or None, status=status or None).to_dict()
    return _page(request, "runs.html", runs=items, dataset=dataset or "", status=status or "")


@router.get("/runs/compare", response_class=HTMLResponse)
def runs_compare(request: Request):
    principal_of(request)
    ids = [i for i in request.query_params.getlist("run") if i]
    if not 2 <= len(ids) <= 5:
        raise HTTPProblem(422, f"compare takes 2 to 5 runs, got {len(ids)}", where="run",
                          fix="tick 2 to 5 runs on the runs page")
    v = request.app.state.lv.vault
    details = [v.get_run(i, points=True).to_dict() for i in ids]
    comparisons = [v.compare_runs(details[0]["run_id"], d["run_id"]).to_dict() for d in details[1:]]
    curves: dict[str, dict[str, list]] = {}
    for d in details:
        for p in d.get("points") or []:
            if p["class"] is None and p["slice"] is None and p["step"] is not None:
                curves.setdefault(p["key"], {}).setdefault(d["run_id"], []).append((p["step"], p["value"]))
    return _page(request, "runs_compare.html", runs=details, comparisons=comparisons, curves=curves,
                 breakdowns=_breakdowns(details))


def _breakdowns(details: list[dict]) -> list[tuple[str, str]]:
    """Per-class and per-slice bars of each metric the runs logged that way: (title, svg)."""
    out = []
    names = [d["run_id"] for d in details]
    for field, what in (("metrics_per_class", "class"), ("metrics_per_slice", "slice")):
        keys = sorted({k for d in details for per in (d.get(field) or {}).values() for k in per})
        for key in keys:
            labels = sorted({label for d in details for label in (d.get(field) or {})})
            rows = [(label, [((d.get(field) or {}).get(label) or {}).get(key) for d in details]) for label in labels]
            out.append((f"{key} per {what}", svg.grouped_bars(rows, names)))
    return out


@router.get("/runs/{run_id}", response_class=HTMLResponse)
@on_loop
def run(request: Request, run_id: str):
    principal_of(request)
    d = request.app.state.lv.vault.get_run(run_id, points=True).to_dict()
    curves: dict[str, dict[str, list]] = {}
    for p in d.get("points") or []:
        if p["class"] is None and p["slice"] is None and p["step"] is not None:
            curves.setdefault(p["key"], {}).setdefault(d["run_id"], []).append((p["step"], p["value"]))
    return _page(request, "run.html", r=d, curves=curves)


# -- models -----------------------------------------------------------------------------------
@router.get("/models/{name}", response_class=HTMLResponse)
@on_loop
def model(request: Request, name: str):
    principal_of(request)
    v = request.app.state.lv.vault
    versions = v.models(name).to_dict()
    if not versions:
        raise HTTPProblem(404, f"no model named {name!r}", where=name, fix="see the home page for models")
    aliases = sorted({a for m in versions for a in m["aliases"]})
    history = v.model_history(name).to_dict()
    latest = v.model(f"{name}@{versions[-1]['version']}").to_dict() if versions else None
    return _page(request, "model.html", name=name, versions=versions, aliases=aliases, history=history,
                 latest=latest)


@router.get("/models/{name}/{version}", response_class=HTMLResponse)
@on_loop
def model_version(request: Request, name: str, version: str):
    principal_of(request)
    m = request.app.state.lv.vault.model(f"{name}@{version}").to_dict()
    return _page(request, "model_version.html", name=name, m=m)


@router.post("/models/{name}/promote")
async def promote(request: Request, name: str):
    form = await _form(request)  # read here; the catalog is written in a worker thread, not the event loop

    def write():
        principal = require(request, "write")
        check_csrf(request, form.get("csrf"))
        with request.app.state.lv.acting(principal.user) as vault:
            vault.promote(f"{name}@{form.get('version', '')}", form.get("alias", ""),
                          reason=form.get("reason") or None)

    await run_in_threadpool(write)
    return RedirectResponse(f"/models/{name}", status_code=303)


@router.post("/models/{name}/rollback")
async def rollback(request: Request, name: str):
    form = await _form(request)

    def write():
        principal = require(request, "write")
        check_csrf(request, form.get("csrf"))
        with request.app.state.lv.acting(principal.user) as vault:
            vault.rollback(name, form.get("alias", ""), reason=form.get("reason") or None)

    await run_in_threadpool(write)
    return RedirectResponse(f"/models/{name}", status_code=303)


# -- lineage, why -----------------------------------------------------------------------------
def _link_of(node: dict) -> str | None:
    kind, label = node["type"], node["label"]
    if kind == "model" and "@" in label:
        n, ver = label.split("@", 1)
        return f"/models/{n}/{ver}"
    if kind == "dataset" and "@" in label:
        n, ver = label.split("@", 1)
        return f"/datasets/{n}/{ver}"
    if kind == "run":
        return f"/runs/{label}"
    return f"/lineage/{node['id'].split(':', 1)[1]}" if kind == "config" else None


LINEAGE_PAGE = 50  # runs (and evaluations) drawn below one node, newest first, as `lensvault lineage` lists


@router.get("/lineage/{ref}", response_class=HTMLResponse)
def lineage(request: Request, ref: str, direction: str = "auto",
            limit: Annotated[int, Query(ge=1)] = LINEAGE_PAGE,
            everything: Annotated[bool, Query(alias="all")] = False):
    """A graph of 20,000 runs is drawn for nobody (and takes seconds): the newest ``limit`` below
    each node, a line saying how many more, and a link to draw them all."""
    principal_of(request)
    g = request.app.state.lv.vault.lineage(ref, direction=direction, limit=None if everything else limit).to_dict()
    return _page(request, "lineage.html", ref=ref, g=g, drawn=svg.lineage_graph(g, _link_of), direction=direction)


@router.get("/why/{a}/{b}", response_class=HTMLResponse)
def why(request: Request, a: str, b: str):
    principal_of(request)
    rep = request.app.state.lv.vault.why(a, b, allow_different_data=True).to_dict()
    return _page(request, "why.html", a=a, b=b, rep=rep)
