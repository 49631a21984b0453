"""Shared fixtures: where the real data lives, and a skip when it is absent (a user's clone)."""

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the real datasets in {SHARED_DATA} (present only in the project's "
                    "workspace; the core tests use the embedded subset)")
    return SHARED_DATA
