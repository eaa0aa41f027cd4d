"""A throwaway PostgreSQL server from Debian's ``postgresql`` package, for the store tests."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class PostgresMissing(RuntimeError):
    """PostgreSQL is not installed here (the store tests are skipped, saying so)."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Start a server on 127.0.0.1 (trust auth, fsync off) and yield its URL; removed afterwards.

    Raises PostgresMissing when PostgreSQL is not installed (the README's test command installs
    it), and RuntimeError when it is installed but does not start (a failure, not a skip).
    """
    bin_dir = _bin_dir()
    if bin_dir is None:
        raise PostgresMissing("PostgreSQL is not installed (apt-get install -y postgresql)")
    root = Path(tempfile.mkdtemp(prefix="cadence-pg-"))
    data = root / "data"
    # initdb and postgres refuse to run as root: run them as the package's `postgres` user.
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    run = lambda *args: subprocess.run([*as_user, *args], check=True, capture_output=True, text=True)  # noqa: E731
    try:
        run(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "cadence", "--no-sync")
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-t", "60", "-o",
            f"-h 127.0.0.1 -p {port} -k {root} -F", "start")
        run(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "cadence", "cadence")
        yield f"postgresql://cadence@127.0.0.1:{port}/cadence"
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"could not start PostgreSQL: {exc.stderr or exc.stdout}") from exc
    finally:
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
