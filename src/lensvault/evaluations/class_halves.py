"""COCOeval's evaluate and accumulate for two halves of the classes at once: one half in this
process, the other in a forked child.

Why it gives the same numbers: COCOeval scores each class on its own. The IoUs are computed per
image and class, the matching per image, class, area range and detection limit, and the precision
and recall of class k (slice k of the ``precision``, ``recall`` and ``scores`` arrays) are
accumulated from that class's matches alone. Two evaluations restricted to complementary sets of
classes therefore give exactly the slices one evaluation of all classes gives (the same C code on
the same inputs: the same bytes), and ``summarize`` over the arrays put back together gives the
same stats. The tests compare both ways and pycocotools, with and without a fork.

Why a child and not a thread: faster-coco-eval's mask IoU and its ``_prepare`` hold the GIL, and
at 100,000 detections its evaluation (the IoUs of 27,000 image/class pairs, then matching and
accumulating in C++) was about half of a mask evaluation's process. The child inherits the COCO
objects (nothing pickled on the way in), prepares and scores its classes, and sends back three
small arrays.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

__all__ = ["PARALLEL_ANNOTATIONS", "class_halves", "evaluate_in_halves"]

# From this many annotations (ground truth and predictions) on, the classes are split between two
# processes; below it the fork costs more than it saves. A module constant: the tests lower it.
PARALLEL_ANNOTATIONS = 20_000

_ARRAYS = ("precision", "recall", "scores")


def class_halves(coco_gt: Any, coco_dt: Any, cat_ids: Sequence[Any], image_ids: Sequence[Any] | None = None,
                 ) -> tuple[list[Any], list[Any]] | None:
    """Two sets of classes of about equal work (by their ground truth and predictions on
    ``image_ids``, default all; the larger classes placed first, each into the lighter half), or
    None: fewer than two classes with annotations, fewer than ``PARALLEL_ANNOTATIONS`` annotations,
    or one CPU."""
    from lensvault.parallel import worker_count

    if len(cat_ids) < 2 or worker_count() < 2:
        return None
    anns = [*coco_gt.anns.values(), *coco_dt.anns.values()]
    if image_ids is not None:
        scope = set(image_ids)
        anns = [a for a in anns if a["image_id"] in scope]
    if len(anns) < PARALLEL_ANNOTATIONS:
        return None
    work = Counter(a["category_id"] for a in anns)
    halves: tuple[list[Any], list[Any]] = ([], [])
    loads = [0, 0]
    # Largest first, ties by id: the same split every run.
    for cat in sorted(cat_ids, key=lambda c: (-work.get(c, 0), c)):
        lighter = 0 if loads[0] <= loads[1] else 1
        halves[lighter].append(cat)
        loads[lighter] += work.get(cat, 0)
    if not halves[0] or not halves[1] or not loads[0] or not loads[1]:
        return None
    return sorted(halves[0]), sorted(halves[1])


def evaluate_in_halves(evaluator: Any, mine: Sequence[Any], theirs: Sequence[Any]) -> None:
    """``evaluator.evaluate(); evaluator.accumulate()`` with ``theirs`` classes evaluated in a forked
    child while this process evaluates ``mine`` (in turn, here, where fork is missing). Afterwards
    ``evaluator.params.catIds`` are all the classes and ``evaluator.eval`` holds the arrays of all
    of them, as one evaluation leaves them (without faster-coco-eval's per-match ``matched``
    table, which nothing here reads); ``summarize`` works as after one evaluation."""
    import copy

    import numpy as np

    from lensvault.parallel import ForkedCall

    params = evaluator.params
    everything = list(np.unique(list(mine) + list(theirs)))  # what evaluate() makes of catIds
    # Both processes write the reference counts of the annotations they read, so the pages the two
    # share get copied: at 100,000 detections the two together peak ~140 MB above one process
    # (docs/benchmarks.md). Freezing the collector around the fork changed nothing measurable.
    with ForkedCall(_evaluated, evaluator, list(theirs)) as other:
        own = _evaluated(evaluator, list(mine))
        their = other.result()
    position = {int(c): k for k, c in enumerate(everything)}
    merged: dict[str, Any] = {}
    for name in _ARRAYS:
        first = own[name]
        shape = list(first.shape)
        axis = 2 if name != "recall" else 1  # precision/scores: [T, R, K, A, M]; recall: [T, K, A, M]
        shape[axis] = len(everything)
        out = np.empty(shape, dtype=first.dtype)
        for part, cats in ((own, mine), (their, theirs)):
            index = [position[int(c)] for c in sorted(cats)]
            if axis == 2:
                out[:, :, index] = part[name]
            else:
                out[:, index] = part[name]
        merged[name] = out
    params.catIds = everything
    evaluator._paramsEval = copy.deepcopy(params)
    evaluator.eval = {
        **{k: v for k, v in evaluator.eval.items() if k not in ("matched", "evaluations_size")},
        "params": params, "counts": list(merged["precision"].shape), **merged,
    }


def _evaluated(evaluator: Any, cat_ids: list[Any]) -> dict[str, Any]:
    """The accumulated arrays of ``cat_ids`` (runs in the child, or in turn here)."""
    evaluator.params.catIds = cat_ids
    evaluator.evaluate()
    evaluator.accumulate()
    return {name: evaluator.eval[name] for name in _ARRAYS}
