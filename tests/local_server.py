"""Helpers for tests that start a real server on localhost (JupyterLab, the demo page) and must stop it."""
import socket
import subprocess


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop(process: subprocess.Popen, grace_s: float = 15) -> None:
    """Terminate a server and wait for it; kill it if it does not exit within `grace_s`."""
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace_s)
