"""Shared test setup: CPU only, deterministic, quiet."""

import os

import pytest
import torch

os.environ.setdefault('CUDA_VISIBLE_DEVICES', '')


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
