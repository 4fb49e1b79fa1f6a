"""Session-wide test environment: smoke mode and one shared data folder, set before any kernel starts.

Notebook kernels (nbval, papermill, the book build) inherit the environment of the pytest process, so the
variables are set when this file is imported, ahead of collection:
- CIFAR_LAB_SMOKE=1: notebooks use the synthetic data and CPU-sized runs;
- CIFAR_LAB_DATA: a temporary folder shared by every notebook of the session, so the synthetic dataset is
  generated once, and removed when the session ends.
"""
import os
import shutil
import tempfile

import pytest
import torch

os.environ["CIFAR_LAB_SMOKE"] = "1"
_SESSION_DATA = tempfile.mkdtemp(prefix="cifar-lab-test-data-")
os.environ["CIFAR_LAB_DATA"] = _SESSION_DATA


def pytest_unconfigure(config):
    shutil.rmtree(_SESSION_DATA, ignore_errors=True)


@pytest.fixture
def offline_torch_home(tmp_path, monkeypatch):
    """An empty torch hub cache, and downloads that fail: a machine without weights and without internet."""
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    monkeypatch.setattr("torchvision.models._api.load_state_dict_from_url", offline, raising=False)
    return home
