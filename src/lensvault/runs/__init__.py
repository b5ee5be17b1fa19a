"""The preflight gate, runs and tracking (configs: lensvault/configs/; evaluations: lensvault/evaluations/).

    preflight.py   the checks a run must pass, as a report (every check: ok / what / fix)
    lifecycle.py   a run row: create (reserving the model version), finish once
    recorder.py    what a run records: params, metric points, artifacts, its output folder
    resolve.py     which run a ref names: an id, a unique prefix, ``latest``
    read.py        list runs, show one, its log
    compare.py     two runs side by side
    launcher.py    ``lensvault run``: data dir, child process, log capture, signals
    owner.py       the process that owns a running run (host, pid, start time) and whether it lives
    crashes.py     runs whose owner died (crashed) or that a person gave up (abandoned)
    tracking.py    log_params / log_metrics / log_artifact / start_run for training code
    reproduce.py   ``lensvault reproduce``: rebuild a recorded run or model and verify it
    metric_sources.py  where a metric comes from (an evaluation or the run's own log)

Only ``tracking`` is imported by training code, so it must stay light at import.
"""
