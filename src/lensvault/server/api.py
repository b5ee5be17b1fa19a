"""``/api/v1``: every route is one ``Vault`` call answered with the result's ``to_dict()`` —
the JSON ``lensvault … --json`` prints for the same question. Routes marked ``@on_loop`` are
short reads (server/turns.py: on the event loop with a SQLite catalog); plain functions run in
worker threads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from lensvault.errors import UsageError
from lensvault.server.auth import check_csrf, principal_of, principal_of_async, require
from lensvault.server.state import exact_ref
from lensvault.server.turns import on_loop

__all__ = ["router"]

router = APIRouter(prefix="/api/v1")


def json_body(content) -> bytes:
    """An answer's JSON (compact, UTF-8): orjson, the project's JSON writer, about ten times
    faster than json on the big answers (a run's points, 100 runs, a page of images) that were
    a tenth of their request's cost. JSON has no NaN or infinity: orjson writes them as null
    (json refused them: the answer was a 500). What orjson refuses (an integer past 64 bits),
    json writes."""
    import orjson

    try:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return bytes(JSONResponse(content).body)


def _json(result) -> Response:
    return Response(json_body(result.to_dict()), media_type="application/json")


def _kept_json(st, key: tuple, compute, *, keep: bool) -> Response:
    """``compute()``'s JSON, kept as the body itself when ``keep`` (an answer that cannot
    change): the same bytes every time, without turning the result into a dict and that into
    JSON again on every request. The result stays cached apart, for the pages."""
    body = st.cached(("json", *key), lambda: json_body(st.cached(key, compute, keep=keep).to_dict()), keep=keep)
    return Response(body, media_type="application/json")


async def _kept_json_async(request: Request, key: tuple, compute, *, keep: bool, short: bool) -> Response:
    """``_kept_json`` for a route on the event loop: a kept body is sent from here, without a
    worker thread (under load, the hand-off to the thread pool and the wait for a free thread
    cost more than the answer); anything else is computed as a short read when ``short``
    (``turns``), else in a worker thread."""
    st = await _reader_async(request)
    if keep:
        body = st.kept(("json", *key))
        if body is not None:
            return Response(body, media_type="application/json")
    if short:
        return await st.turns.read(_kept_json, st, key, lambda: compute(st), keep=keep)
    return await run_in_threadpool(_kept_json, st, key, lambda: compute(st), keep=keep)


def _reader(request: Request):
    principal_of(request)
    return request.app.state.lv


async def _reader_async(request: Request):
    await principal_of_async(request)
    return request.app.state.lv


def _ref(name: str, version: str) -> str:
    return f"{name}@{version}"


@router.get("/whoami", tags=["auth"])
@on_loop
def whoami(request: Request):
    """The user and role this request acts as."""
    return _json(principal_of(request))


# -- datasets ---------------------------------------------------------------------------------
@router.get("/datasets", tags=["datasets"])
@on_loop
def datasets(request: Request):
    """``dataset list``."""
    return _json(_reader(request).vault.datasets())


@router.get("/datasets/{name}/versions", tags=["datasets"])
def dataset_versions(request: Request, name: str):
    """``dataset log NAME``: every version, newest first."""
    return _json(_reader(request).vault.dataset_log(name))


# The routes of answers that can be kept are coroutines: a kept answer is sent from the event
# loop (_kept_json_async); anything else is a short read (server/turns.py) or, for what grows
# with the data (a version's every file, a check, a diff), computed in a worker thread.
@router.get("/datasets/{name}/versions/{version}", tags=["datasets"])
async def dataset_version(request: Request, name: str, version: str, files: bool = False):
    """``dataset show NAME@VERSION`` (``files``: every file too; a page of them:
    ``…/files?after=&limit=``)."""
    ref = _ref(name, version)
    if files:
        return await _every_file(request, ref)
    return await _kept_json_async(request, ("details", ref, False), lambda st: st.vault.dataset_details(ref),
                                  keep=exact_ref(ref), short=True)


async def _every_file(request: Request, ref: str) -> Response:
    """Every file of a version is a big answer: never kept, and sent as it is read, a batch of
    files at a time (in worker threads: it grows with the data), never held whole. The tables are
    read before the answer starts, so one that cannot be read is an error status, not half a body."""
    from fastapi.responses import StreamingResponse

    st = await _reader_async(request)
    stream = await run_in_threadpool(lambda: st.vault.dataset_details(ref, files=True).json_stream())
    return StreamingResponse(json_stream_body(stream), media_type="application/json")


def json_stream_body(stream) -> Iterator[bytes]:
    """``json_body({**stream.head, stream.key: [...]})``, the list's items a batch at a time."""
    head = json_body({**stream.head, stream.key: []})
    assert head.endswith(b"[]}"), head[-40:]  # (the list is the object's last key)
    yield head[:-len(b"[]}")] + b"["
    wrote = False
    for rows in stream.batches:
        if rows:
            yield (b"," if wrote else b"") + json_body(rows)[1:-1]
            wrote = True
    yield b"]}"


@router.get("/datasets/{name}/versions/{version}/files", tags=["datasets"])
async def dataset_files(request: Request, name: str, version: str, after: Annotated[int, Query(ge=0)] = 0,
                        limit: Annotated[int, Query(ge=1, le=1000)] = 100):
    """A page of the version's files (``dataset show --files``'s ``file_list``, ``limit`` of them from
    ``after``); the next page is ``?after=<next>``. Reads the row groups holding them, not the table."""
    ref = _ref(name, version)
    return await _kept_json_async(request, ("files", ref, after, limit),
                                  lambda st: st.vault.dataset_files(ref, after=after, limit=limit),
                                  keep=exact_ref(ref), short=False)


@router.get("/datasets/{name}/versions/{version}/images", tags=["datasets"])
async def dataset_images(request: Request, name: str, version: str, split: str | None = None,
                         class_name: Annotated[str | None, Query(alias="class")] = None, tag: str | None = None,
                         after: Annotated[int, Query(ge=0)] = 0, limit: Annotated[int, Query(ge=1, le=500)] = 48):
    """A page of images with their annotations; filter by split, class, tag (``key`` or ``key=value``);
    the next page is ``?after=<next>``."""
    ref = _ref(name, version)
    key = ("images", ref, split, class_name, tag, after, limit)
    return await _kept_json_async(request, key, lambda st: st.vault.images(
        ref, split=split, class_name=class_name, tag=tag, after=after, limit=limit), keep=exact_ref(ref), short=True)


@router.get("/datasets/{name}/versions/{version}/images/{image_id}", tags=["datasets"])
@on_loop
def dataset_image(request: Request, name: str, version: str, image_id: int):
    """One image and every annotation of it, with attributes."""
    return _json(_reader(request).vault.image(_ref(name, version), image_id))


@router.get("/datasets/{name}/versions/{version}/images/{image_id}/masks/{index}", tags=["datasets"])
def dataset_image_mask(request: Request, name: str, version: str, image_id: int, index: int, tint: str = "class"):
    """A mask annotation as a half-transparent PNG the size of its image (``tint``: the class's
    colour, or a diff colour: unchanged, added, removed, moved, relabeled), made once and kept."""
    from lensvault.server.masks import mask_response

    return mask_response(request, _reader(request), name, version, image_id, index, tint)


@router.get("/datasets/{name}/versions/{version}/check", tags=["datasets"])
async def dataset_check(request: Request, name: str, version: str):
    """``dataset check``: duplicates, near-duplicates and split leakage."""
    ref = _ref(name, version)
    return await _kept_json_async(request, ("check", ref), lambda st: st.vault.check(ref), keep=exact_ref(ref),
                                  short=False)


@router.get("/datasets/{name}/diff/{a}/{b}", tags=["datasets"])
async def dataset_diff(request: Request, name: str, a: str, b: str):
    """``dataset diff NAME@A NAME@B``: files, and for annotated versions images, boxes, classes, splits."""
    ra, rb = _ref(name, a), _ref(name, b)
    return await _kept_json_async(request, ("diff", ra, rb), lambda st: st.vault.compare_datasets(ra, rb),
                                  keep=exact_ref(ra) and exact_ref(rb), short=False)


# -- objects ----------------------------------------------------------------------------------
@router.get("/objects/{oid}", tags=["objects"])
def object_bytes(request: Request, oid: str):
    """A stored object's bytes: ETag is the sha256, immutable, byte ranges (``Range: bytes=…``)."""
    from lensvault.server.objects import object_response

    return object_response(request, _reader(request).vault.store, oid)


@router.get("/objects/{oid}/thumbnail", tags=["objects"])
async def object_thumbnail(request: Request, oid: str, size: int = 256):
    """A JPEG thumbnail of an image object (128, 256 or 512 px), made once and kept."""
    from lensvault.server.objects import kept_thumbnail, thumbnail_response

    st = await _reader_async(request)
    kept = kept_thumbnail(request, st, oid, size)  # from memory, on the event loop
    if kept is not None:
        return kept
    return await run_in_threadpool(thumbnail_response, request, st, oid, size)


# -- configs, runs, evaluations ---------------------------------------------------------------
@router.get("/configs", tags=["runs"])
@on_loop
def configs(request: Request):
    return _json(_reader(request).vault.configs())


@router.get("/configs/{config_id}", tags=["runs"])
@on_loop
def config(request: Request, config_id: str):
    return _json(_reader(request).vault.get_config(config_id))


@router.get("/configs/{a}/diff/{b}", tags=["runs"])
def config_diff(request: Request, a: str, b: str):
    return _json(_reader(request).vault.diff_configs(a, b))


@router.get("/runs", tags=["runs"])
@on_loop(paged_by="limit")
def runs(request: Request, dataset: str | None = None, status: str | None = None,
         limit: Annotated[int | None, Query(ge=1)] = None):
    """``runs list``, newest first."""
    return _json(_reader(request).vault.runs(dataset=dataset, status=status, limit=limit))


@router.get("/runs/compare/{a}/{b}", tags=["runs"])
def runs_compare(request: Request, a: str, b: str):
    """``runs compare A B``."""
    return _json(_reader(request).vault.compare_runs(a, b))


@router.get("/runs/{run_id}", tags=["runs"])
@on_loop
def run(request: Request, run_id: str, points: bool = False):
    """``runs show`` (``points``: every logged metric point)."""
    return _json(_reader(request).vault.get_run(run_id, points=points))


@router.get("/runs/{run_id}/metrics", tags=["runs"])
@on_loop
def run_metrics(request: Request, run_id: str):
    """``runs show --points``: the run with every metric point per step."""
    return _json(_reader(request).vault.get_run(run_id, points=True))


@router.get("/runs/{run_id}/log", tags=["runs"])
@on_loop
def run_log(request: Request, run_id: str):
    return _json(_reader(request).vault.run_log(run_id))


@router.get("/evaluations", tags=["runs"])
def evaluations(request: Request, run: str | None = None, model: str | None = None, dataset: str | None = None,
                ad_hoc: bool = False):
    """``evals``: recorded evaluations, oldest first, each with its source."""
    return _json(_reader(request).vault.evaluations(run=run, model=model, dataset=dataset, ad_hoc=ad_hoc))


# -- models -----------------------------------------------------------------------------------
@router.get("/models", tags=["models"])
@on_loop
def models(request: Request, name: str | None = None):
    """``model list``."""
    return _json(_reader(request).vault.models(name))


@router.get("/models/{ref}", tags=["models"])
@on_loop
def model(request: Request, ref: str):
    """``model show NAME@VERSION`` or ``NAME@ALIAS``: files, lineage, release notes."""
    return _json(_reader(request).vault.model(ref))


@router.get("/models/{name}/history", tags=["models"])
@on_loop
def model_history(request: Request, name: str, alias: str | None = None):
    """``model history``: every alias move, oldest first."""
    return _json(_reader(request).vault.model_history(name, alias))


@router.post("/models/{name}/aliases/{alias}/promote", tags=["models"])
def promote(request: Request, name: str, alias: str, version: Annotated[str, Body(embed=True)],
            reason: Annotated[str | None, Body(embed=True)] = None, new: Annotated[bool, Body(embed=True)] = False):
    """``model promote NAME@VERSION ALIAS`` as the token's user (write role)."""
    principal = _writer(request, "write")
    with request.app.state.lv.acting(principal.user) as vault:
        try:
            return _json(vault.promote(_ref(name, version), alias, reason=reason, new=new))
        except UsageError as e:
            if e.details.get("needs") == "new":  # the fix in the API's words, not the CLI's flag
                e.fix = f'send "new": true in the request body to create {alias!r} (or promote to an alias it has)'
            raise


@router.post("/models/{name}/aliases/{alias}/rollback", tags=["models"])
def rollback(request: Request, name: str, alias: str, reason: Annotated[str | None, Body(embed=True)] = None):
    """``model rollback NAME ALIAS`` as the token's user (write role)."""
    principal = _writer(request, "write")
    with request.app.state.lv.acting(principal.user) as vault:
        return _json(vault.rollback(name, alias, reason=reason))


def _writer(request: Request, role: str):
    principal = require(request, role)
    check_csrf(request, request.headers.get("x-csrf-token"))
    return principal


# -- lineage, why, events, gc -----------------------------------------------------------------
@router.get("/lineage/{ref}", tags=["lineage"])
@on_loop(paged_by="limit")
def lineage(request: Request, ref: str, direction: str = "auto", limit: Annotated[int | None, Query(ge=1)] = None):
    """``lineage REF [--limit N]``: the graph (nodes, edges) of a model, run, dataset version or
    config; with ``limit``, at most that many runs and evaluations below one node, newest first,
    and ``omitted`` says how many more there are."""
    return _json(_reader(request).vault.lineage(ref, direction=direction, limit=limit))


@router.get("/why/{a}/{b}", tags=["lineage"])
def why(request: Request, a: str, b: str, allow_different_data: bool = False):
    """``why A B``: what changed between two model versions (or runs), most likely cause first."""
    return _json(_reader(request).vault.why(a, b, allow_different_data=allow_different_data))


@router.get("/events", tags=["events"])
@on_loop(paged_by="limit")
def events(request: Request, subject: str | None = None, action: str | None = None, since: str | None = None,
           until: str | None = None, limit: Annotated[int | None, Query(ge=1)] = None):
    """``events``: the audit log, oldest first (``limit``: the last N)."""
    return _json(_reader(request).vault.events(subject=subject, action=action, since=since, until=until,
                                               limit=limit))


@router.post("/gc", tags=["admin"])
def gc(request: Request, delete: Annotated[bool, Body(embed=True)] = False,
       grace_seconds: Annotated[float, Body(embed=True)] = 3600):
    """``gc``: the plan of unreachable objects; with ``delete``, carried out (admin role)."""
    principal = _writer(request, "admin")
    with request.app.state.lv.acting(principal.user) as vault:
        return _json(vault.collect_garbage(grace_seconds=grace_seconds, delete=delete))
