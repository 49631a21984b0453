"""Shared fixtures: where the real data lives ($LCENGINE_SHARED_DATA, else ../shared/data beside
the clone), and a skip when it is absent (a user's clone); an empty data home for every test, so
none reads or writes the user's own."""

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(os.environ.get("LCENGINE_SHARED_DATA")
                   or Path(__file__).resolve().parents[2] / "shared" / "data")


@pytest.fixture(autouse=True, scope="session")
def empty_data_home(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LCENGINE_DATA", str(tmp_path_factory.mktemp("data-home")))
        yield


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the real datasets in {SHARED_DATA} (present only in the project's "
                    "workspace; the core tests use the embedded subset)")
    return SHARED_DATA
