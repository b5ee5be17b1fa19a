"""Remotes: share dataset versions, runs and models between machines through object storage.

A remote is a store plus a few refs (store/remote.py has its layout): ``push`` uploads what
the remote lacks — objects, then record objects, then refs and journal entries — so that no
ref ever names something incomplete; ``clone`` makes a new vault from a remote (its catalog
rebuilt from the records, as ``catalog rebuild`` does); ``pull`` brings one version, run or
model into an existing vault. Every byte that comes in is hashed before it enters the store.

    config.py    named remotes in the vault's config (never credentials)
    closure.py   which records and objects a ref needs
    push.py      upload
    missing_here.py  push of records fetched without their data: name what is where, before sending
    fetch.py     download: pull and clone
    records_fetch.py  ``fetch``: every record, the data left on the remote
    promised.py  which missing objects are on a remote (fetched records' markers), for verify
    autofetch.py checkout, model pull, reproduce, VisionDataset: fetch what they need
    results.py   what the commands return
    reach.py     what a remote's refs and records reach, read from the remote (verify, gc)
    status.py    status --remote: not pushed, not pulled
    verify.py    verify --remote [--hash]
    gc.py        gc --remote: plan, then delete what nothing there names (after a grace period)
"""
