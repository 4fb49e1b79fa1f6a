"""The MyST chapters open as notebooks in JupyterLab: the set-up installs jupytext's default-viewer setting into
this environment's JupyterLab, and a running server hands a chapter's `.md` out as a notebook.

The server is a real `jupyter lab` on a free localhost port, started from this environment and always stopped.
"""
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from book_toc import ROOT  # tests/ is on sys.path under pytest
from local_server import free_port, stop

SETTINGS = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
PLUGIN = "@jupyterlab/docmanager-extension:plugin"


def get_json(url: str, token: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def test_setup_installs_the_default_viewer_setting():
    assert SETTINGS.is_file(), f"{SETTINGS} is missing: run scripts/setup.sh"
    viewers = json.loads(SETTINGS.read_text())[PLUGIN]["defaultViewers"]
    assert viewers["markdown"] == "Jupytext Notebook"


def test_a_chapter_opens_as_a_notebook_through_a_running_server(tmp_path):
    port, token = free_port(), "cifar-lab-test"
    command = [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", f"--port={port}",
               "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT}"]
    if os.geteuid() == 0:
        command.append("--allow-root")   # Jupyter refuses to start as root without it (containers, CI)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),   # no user settings of this machine
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "user-settings")}
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                get_json(f"{base}/api/status", token)
                break
            except OSError:
                assert server.poll() is None, f"jupyter lab exited: {server.stderr.read()[-2000:]}"
                assert time.monotonic() < deadline, "jupyter lab did not answer within 90 s"
                time.sleep(0.5)

        # What the UI reads when a file is double-clicked: the default viewer of the markdown file type.
        settings = get_json(f"{base}/lab/api/settings/{PLUGIN}", token)
        default = settings["schema"]["properties"]["defaultViewers"]["default"]
        assert default.get("markdown") == "Jupytext Notebook", default

        # What the notebook viewer then asks for: the chapter as a notebook, through jupytext's contents manager.
        chapter = get_json(f"{base}/api/contents/notebooks/02_cifar10_resnet18.md?type=notebook&content=1", token)
        assert chapter["type"] == "notebook"
        cells = chapter["content"]["cells"]
        assert any(cell["cell_type"] == "code" for cell in cells)
        assert any("parameters" in cell.get("metadata", {}).get("tags", []) for cell in cells)
    finally:
        stop(server, grace_s=20)
