"""Shared fixtures: fresh vaults on SQLite and on the PostgreSQL server that
``make test`` starts (scripts/with-postgres.sh exports LENSVAULT_TEST_PG_URL)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"  # small licensed samples (tests/data/README.md)

# The CLI under test fits its tables to COLUMNS when it is set (a terminal's width) and prints
# piped output unwrapped otherwise. pytest-xdist's workers set COLUMNS=80, which the serial run
# does not: without this, a test's output would depend on how the suite was started.
for _name in ("COLUMNS", "LINES"):
    os.environ.pop(_name, None)


def _pg_admin_url() -> str | None:
    return os.environ.get("LENSVAULT_TEST_PG_URL")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return DATA


@pytest.fixture(scope="session")
def bccd_dir(shared_data) -> Path:
    return shared_data / "bccd"


@pytest.fixture(scope="session")
def format_samples(shared_data) -> Path:
    return shared_data / "format-samples"


@pytest.fixture
def pg_url():
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    admin = _pg_admin_url()
    if not admin:
        if os.environ.get("CI"):
            pytest.fail("LENSVAULT_TEST_PG_URL is not set in CI: run the suite through `make test`")
        pytest.skip("no PostgreSQL server (run through `make test` to get one)")
    import sqlalchemy as sa

    name = f"lv_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.exec_driver_sql(f"CREATE DATABASE {name}")
    url = admin.rsplit("/", 1)[0] + "/" + name
    yield url
    with engine.connect() as c:
        c.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request, tmp_path):
    """Parametrizes a test over both catalog backends."""
    if request.param == "sqlite":
        return None  # the default: sqlite inside the vault
    return request.getfixturevalue("pg_url")


@pytest.fixture
def vault(tmp_path, catalog_url):
    import lensvault

    v = lensvault.init(tmp_path / "vault", catalog=catalog_url)
    yield v
    v.close()


@pytest.fixture(params=["local", "memory"])
def store_url(request, tmp_path):
    """Parametrizes a test over both object store implementations: the local folder (the
    default) and the in-memory store, which has no files to link to. What passes on both
    relies on the store interface alone (lensvault/store/base.py)."""
    if request.param == "local":
        return None
    return f"memory://{uuid.uuid4().hex}"


@pytest.fixture
def store_vault(tmp_path, store_url):
    """A SQLite vault on each object store implementation (see ``store_url``)."""
    import lensvault

    v = lensvault.init(tmp_path / "vault", store=store_url)
    yield v
    v.close()


@pytest.fixture
def sqlite_vault(tmp_path):
    import lensvault

    v = lensvault.init(tmp_path / "vault")
    yield v
    v.close()


def write_files(root: Path, files: dict[str, bytes | str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)
    return root
