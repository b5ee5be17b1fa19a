"""Training configs: a config file's values (``values.py``: load YAML/JSON/TOML, flatten,
diff, canonical bytes, seeds) and the configs registered in the catalog under an ID such as
C-23c (``registered.py``).

Not to be confused with a vault's own settings, ``.lensvault/config.toml``
(lensvault/vault_config.py).
"""
