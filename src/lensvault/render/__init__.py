"""Human output: one renderer module per domain, each function taking a result and a rich Console.

    lensvault.render.vault      init, verify, gc, events, catalog rebuild
    lensvault.render.datasets   dataset snapshot/fix/list/log/show/diff/checkout/export/check, status
    lensvault.render.runs       config, preflight, run, runs, eval, evals
    lensvault.render.registry   model register/show/list/promote/rollback/history/pull
    lensvault.render.lineage    lineage (text, Mermaid, DOT), why, reproduce

A renderer reads only its result (what ``to_dict()`` serializes, or the result object's own
fields) and writes to the Console it is given; it computes nothing the JSON lacks, so the
human output and ``--json`` say the same facts. The CLI picks a renderer or ``to_dict()``;
a web page will render the same result object with a template.
"""
