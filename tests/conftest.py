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

os.environ["CIFAR_LAB_SMOKE"] = "1"
_SESSION_DATA = tempfile.mkdtemp(prefix="cifar-lab-test-data-")
os.environ["CIFAR_LAB_DATA"] = _SESSION_DATA


def pytest_unconfigure(config):
    shutil.rmtree(_SESSION_DATA, ignore_errors=True)
