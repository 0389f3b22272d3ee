from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
METADATA = SHARED / "data" / "metadata"


@pytest.fixture
def metadata_dir() -> Path:
    if not METADATA.is_dir():
        pytest.skip("../shared/data/metadata is absent (a user's clone has no ../shared)")
    return METADATA


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _seed_torch():
    torch.manual_seed(0)
    yield
