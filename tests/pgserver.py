"""A throwaway PostgreSQL server from Debian's packages, for tests and benchmarks.

``initdb`` + ``pg_ctl`` on a temporary directory: unix socket in that directory, no TCP
listener, a free port number (which only names the socket), trust authentication. As
root the server runs as the ``postgres`` system user (PostgreSQL refuses to run as root).

    with PgServer() as pg:
        url = pg.create_database("t1")    # postgresql+psycopg://postgres@/t1?host=...
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["PgServer", "PgUnavailable", "find_pg_bin"]


class PgUnavailable(RuntimeError):
    """PostgreSQL cannot be started here (the message says why)."""


def find_pg_bin() -> Path | None:
    """The newest /usr/lib/postgresql/*/bin holding initdb and pg_ctl (or $PG_BIN)."""
    cands = [os.environ["PG_BIN"]] if os.environ.get("PG_BIN") else []

    def version(p: str) -> float:
        try:
            return float(Path(p).parent.name)
        except ValueError:
            return 0.0

    cands += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    for c in cands:
        if (Path(c) / "initdb").is_file() and (Path(c) / "pg_ctl").is_file():
            return Path(c)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    """One PostgreSQL cluster in a temporary directory; ``start()``/``stop()`` or ``with``.

    ``fast=True`` turns off fsync (tests: nothing to keep after a crash); benchmarks keep
    PostgreSQL's durable defaults."""

    def __init__(self, *, fast: bool = True, settings: dict[str, str] | None = None):
        self.bin = find_pg_bin()
        if self.bin is None:
            raise PgUnavailable("PostgreSQL is not installed (no initdb/pg_ctl under "
                                "/usr/lib/postgresql/*/bin; apt-get install postgresql)")
        self.fast = fast
        self.settings = dict(settings or {})
        self.dir: Path | None = None
        self.port = 0
        self._user: str | None = None

    # -- running commands as the right user -----------------------------------------------
    def _cmd(self, *argv: str) -> list[str]:
        if self._user is None:
            return list(argv)
        runuser = shutil.which("runuser")
        if runuser:
            return [runuser, "-u", self._user, "--", *argv]
        return ["su", self._user, "-s", "/bin/sh", "-c", " ".join(map(_quote, argv))]

    def _run(self, *argv: str, timeout: float = 60) -> None:
        res = subprocess.run(self._cmd(*argv), capture_output=True, text=True, timeout=timeout,
                             cwd=self.dir)
        if res.returncode != 0:
            out = (res.stderr or res.stdout).strip().splitlines()
            raise PgUnavailable(f"{Path(argv[0]).name} failed: {out[-1] if out else res.returncode}")

    def start(self) -> PgServer:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> PgServer:
        self.dir = Path(tempfile.mkdtemp(prefix="coach-pg-"))
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise PgUnavailable("running as root and there is no `postgres` user to run "
                                    "the server as") from exc
            self._user = "postgres"
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dir, 0o700)
        data, sock = self.dir / "data", self.dir
        self.port = _free_port()
        self._run(str(self.bin / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--locale=C", "--no-instructions")
        opts = {"listen_addresses": "''", "unix_socket_directories": f"'{sock}'",
                "port": str(self.port), "max_connections": "100"}
        if self.fast:
            opts.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        opts.update(self.settings)
        o = " ".join(f"-c {k}={v}" for k, v in opts.items())
        self._run(str(self.bin / "pg_ctl"), "-D", str(data), "-l", str(self.dir / "log"),
                  "-o", o, "-w", "-t", "60", "start", timeout=90)
        self._wait()
        return self

    def _wait(self) -> None:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.dsn("postgres")):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise PgUnavailable("the server did not accept connections") from None
                time.sleep(0.1)

    def dsn(self, db: str) -> str:
        return f"host={self.dir} port={self.port} user=postgres dbname={db}"

    def url(self, db: str) -> str:
        """The SQLAlchemy URL of database ``db`` on this server."""
        return f"postgresql+psycopg://postgres@/{db}?host={self.dir}&port={self.port}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self.dir is None:
            return
        try:
            if (self.dir / "data" / "postmaster.pid").exists():
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast",
                          "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> PgServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _quote(s: str) -> str:
    import shlex

    return shlex.quote(s)
