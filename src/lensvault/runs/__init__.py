"""The preflight gate and runs (configs: lensvault/configs/; evaluations: lensvault/evaluations/).

    preflight.py   the checks a run must pass, as a report (every check: ok / what / fix)
    lifecycle.py   a run row: create (reserving the model version), finish once
    recorder.py    what a run records: params, metric points, artifacts, its output folder
    resolve.py     which run a ref names: an id, a unique prefix, ``latest``
    read.py        list runs, show one, its log
    compare.py     two runs side by side
    launcher.py    ``lensvault run``: data dir, child process, log capture, signals
    owner.py       the process that owns a running run (host, pid, start time) and whether it lives
    crashes.py     runs whose owner died (crashed) or that a person gave up (abandoned)
    runfiles.py    a run's scratch folder and its stored log
    reproduce.py   ``lensvault reproduce``: rebuild a recorded run or model and verify it
    metric_sources.py  where a metric comes from (an evaluation or the run's own log)

The tracking API for training code (log_params / log_metrics / log_artifact / start_run)
opens a vault, so it lives above this package, beside the ``Vault``: ``lensvault/tracking.py``
(light at import: training code imports it).
"""
