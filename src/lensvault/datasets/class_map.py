"""A new version's class ids start from its parent's class map.

VOC, labelme and masks name their classes but number none of them: the importer
numbers them itself (sorted names, or the order of a class list found in the
source). Numbered afresh, adding "Basophil" to a VOC dataset would move "Platelets"
from id 0 to 1 — a re-index, which breaks every model's label map (MAJOR). So for
such imports (``AnnotationSet.ids_from_names``) the parent's class map is the base:
a class keeps the id it had, a new name gets the next id after the parent's highest,
and a class whose name is gone is gone (a removal, still MAJOR). COCO and YOLO ids,
and the order of an explicit ``--classes`` file, come from the user and are kept as
given: a re-index there is real.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

    from lensvault.annotations.model import ClassMap

__all__ = ["align_to_parent"]


def align_to_parent(classes: ClassMap, annotations: pa.Table, parent_classes: ClassMap | None
                    ) -> tuple[ClassMap, pa.Table]:
    """``(classes, annotations)`` with ids taken from ``parent_classes`` where names match.

    ``classes`` is the import's ``ClassMap``, ``annotations`` its table (``class_id``
    is remapped); ``parent_classes`` the parent version's ``ClassMap`` or None.
    """
    if parent_classes is None:
        return classes, annotations
    from lensvault.annotations.model import ClassMap

    parent_id: dict[str, int] = {}
    for i, n in zip(parent_classes.ids, parent_classes.names):
        parent_id.setdefault(n, i)  # a COCO parent may repeat a name: its first id
    next_id = max(parent_classes.ids, default=-1) + 1
    new_id: dict[int, int] = {}
    for i, n in zip(classes.ids, classes.names):
        if n in parent_id:
            new_id[i] = parent_id[n]
        else:
            new_id[i], next_id = next_id, next_id + 1
    if all(a == b for a, b in new_id.items()):
        return classes, annotations
    pairs = sorted((new_id[i], n) for i, n in zip(classes.ids, classes.names))
    keypoints = {new_id[k]: v for k, v in classes.keypoints.items() if k in new_id}
    aligned = ClassMap(tuple(i for i, _ in pairs), tuple(n for _, n in pairs), keypoints)
    return aligned, _remap(annotations, new_id)


def _remap(annotations: pa.Table, new_id: dict[int, int]) -> pa.Table:
    import pyarrow as pa

    col = annotations.column_names.index("class_id")
    # An id outside the import's own map (an importer bug) is left as it is: validation named it.
    values = [new_id.get(c, c) for c in annotations.column("class_id").to_pylist()]
    return annotations.set_column(col, annotations.schema.field(col), pa.array(values, pa.int32()))
