"""Configs, the preflight gate, runs, tracking and evaluations.

    configs.py     register / show / diff config files under IDs such as C-23c
    preflight.py   the checks a run must pass, as a report (every check: ok / what / fix)
    records.py     run rows: create (reserving the model version), finish, list, show, compare
    launcher.py    ``lensvault run``: data dir, child process, log capture, signals
    owner.py       the process that owns a running run (host, pid, start time) and whether it lives
    crashes.py     runs whose owner died (crashed) or that a person gave up (abandoned)
    tracking.py    log_params / log_metrics / log_artifact / start_run for training code
    evaluate.py    COCO metrics of predictions against a dataset version's split

Only ``tracking`` is imported by training code, so it must stay light at import.
"""
