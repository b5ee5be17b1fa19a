"""Evaluations: COCO-style detection metrics (``coco_metrics.py``: pycocotools' COCOeval,
per class and per slice) and the evaluations recorded in the catalog (``recorded.py``: a
predictions file scored on a dataset version's split, attached to a run, a model version or
neither). Where a metric comes from is lensvault/runs/metric_sources.py.
"""
