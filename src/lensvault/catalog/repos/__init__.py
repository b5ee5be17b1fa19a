"""Repositories: the catalog's queries, one small class per aggregate.

Every SQL statement of LensVault lives in ``catalog/`` — here, in the catalog's own
bookkeeping (``catalog.py``, ``health.py``, ``locks.py``, ``replace.py``) and in the
migrations. Domain modules ask a repository; they never build a statement or name a table.

A repository is bound to one connection from ``Catalog.query()``, ``Catalog.read()`` or
``Catalog.begin()`` and never opens, commits or ends a transaction: what belongs in one
transaction (the rows, the event, the ledger record, the object refs) stays the domain's
decision, as before. Reads are SQL text (``catalog/sql.py`` runs it on the standard library's
sqlite3 or on SQLAlchemy: read-only commands on a SQLite catalog never import SQLAlchemy);
writes are SQLAlchemy Core, imported in the method that writes. Rows come back as named tuples
(read-only, attribute access by column name, ``_mapping``) or plain values.

=====================  ==================================================  ==========================
repository             tables                                              module
=====================  ==================================================  ==========================
DatasetRepo            dataset_versions, snapshots                         repos/datasets.py
ConfigRepo             configs                                             repos/configs.py
RunRepo                runs, run_params, run_metrics, run_latest_metrics,  repos/runs.py
                       run_artifacts, model_reservations
EvaluationRepo         evaluations                                         repos/evaluations.py
ModelRepo              model_versions, model_files                         repos/models.py
AliasRepo              aliases, alias_moves                                repos/aliases.py
EventRepo              events                                              repos/events.py
ObjectRefRepo          object_refs                                         repos/object_refs.py
TokenRepo              api_tokens                                          repos/tokens.py
SessionRepo            api_sessions                                        repos/sessions.py
=====================  ==================================================  ==========================

A new query goes into the repository of the aggregate it reads or writes (a new aggregate
gets a module of its own here); a new table or column into the live definitions
(``catalog/schema.py``, ``runs_schema.py``, ``registry_schema.py``) *and* a new migration step.
"""

from __future__ import annotations

from lensvault.catalog.repos._base import Conflict, savepoint
from lensvault.catalog.repos.aliases import AliasRepo
from lensvault.catalog.repos.configs import ConfigRepo
from lensvault.catalog.repos.datasets import DatasetRepo
from lensvault.catalog.repos.evaluations import EvaluationRepo
from lensvault.catalog.repos.events import EventRepo
from lensvault.catalog.repos.models import ModelRepo
from lensvault.catalog.repos.object_refs import ObjectRefRepo
from lensvault.catalog.repos.runs import RunRepo
from lensvault.catalog.repos.sessions import SessionRepo
from lensvault.catalog.repos.tokens import TokenRepo

__all__ = ["AliasRepo", "ConfigRepo", "Conflict", "DatasetRepo", "EvaluationRepo", "EventRepo", "ModelRepo",
           "ObjectRefRepo", "RunRepo", "SessionRepo", "TokenRepo", "savepoint"]
