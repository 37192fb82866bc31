"""A team's tracking server: ``latentforge tracking-server --dir FOLDER``.

Starts a throwaway PostgreSQL cluster in ``FOLDER/postgres`` (Debian's ``postgresql``; created
on the first start, kept after: stopping and starting again keeps every run and registered
model), listening on 127.0.0.1 only, with its socket in ``FOLDER``; then ``mlflow server`` with
that database as its backend store and ``FOLDER/artifacts`` as the artifact store, served
through the server (``--serve-artifacts``: clients need no access to the folder, only HTTP).
It prints the ``MLFLOW_TRACKING_URI`` to export and runs until Ctrl-C or SIGTERM, then stops
the MLflow server and PostgreSQL (a fast shutdown: no run is lost, open connections are cut).

PostgreSQL refuses to run as root, so as root its programs run as the ``postgres`` user
(``runuser``), which then owns ``FOLDER/postgres``.

    latentforge tracking-server --dir /srv/mlflow [--port 5000] [--pg-port 0 (a free one)] [--host 127.0.0.1]
    export MLFLOW_TRACKING_URI=http://127.0.0.1:5000
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import UserError

DATABASE = "mlflow"
START_TIMEOUT_S = 120.0


@dataclass
class Server:
    """What a started tracking server is: its URI and its processes."""

    uri: str
    backend_uri: str
    folder: Path
    postgres: PostgresCluster
    mlflow: subprocess.Popen

    def stop(self) -> None:
        """Stop the MLflow server, then PostgreSQL."""
        if self.mlflow.poll() is None:
            self.mlflow.send_signal(signal.SIGTERM)
            try:
                self.mlflow.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.mlflow.kill()
                self.mlflow.wait()
        self.postgres.stop()


def postgres_bin() -> Path:
    """The newest installed PostgreSQL's programs (``initdb``, ``pg_ctl``, ``createdb``)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        return Path(pg_ctl).parent
    raise UserError("PostgreSQL is not installed (no pg_ctl); run bin/setup, or apt-get install postgresql")


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the system's choice)."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def port_free(host: str, port: int) -> bool:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class PostgresCluster:
    """A PostgreSQL cluster in ``folder / "postgres"``, its socket in ``folder``, on 127.0.0.1:port."""

    def __init__(self, folder: Path, port: int = 0):
        self.folder, self.port = folder, port or free_port()
        self.data = folder / "postgres"
        self.bin = postgres_bin()
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name

    def _run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.bin / program) if (self.bin / program).exists() else program, *args]
        if os.geteuid() == 0:  # initdb and postgres refuse root
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "LC_ALL": "C.UTF-8"})
        if check and done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise UserError(f"PostgreSQL {program} failed: {detail[-1] if detail else done.returncode}")
        return done

    def start(self) -> None:
        if not port_free("127.0.0.1", self.port):
            raise UserError(f"PostgreSQL port {self.port} is in use on 127.0.0.1; pass --pg-port with a free port")
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            postgres = pwd.getpwnam("postgres")
            os.chown(self.folder, postgres.pw_uid, postgres.pw_gid)
            if self._run("test", "-w", str(self.folder), check=False).returncode != 0:
                raise UserError(
                    f"PostgreSQL runs as the user postgres, which cannot reach {self.folder} (a private home?); "
                    "pass a --dir it can reach, e.g. /srv/mlflow"
                )
        if not (self.data / "PG_VERSION").is_file():
            self._run("initdb", "-D", str(self.data), "--auth=trust", "-U", self.user, "--encoding=UTF8")
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder}"
        log = self.folder / "postgres.log"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(log), "-w", "-t", "60", "start")
        created = self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, DATABASE, check=False)
        if created.returncode != 0 and "already exists" not in created.stderr:
            self.stop()
            raise UserError(f"PostgreSQL createdb failed: {created.stderr.strip().splitlines()[-1:]}")

    @property
    def uri(self) -> str:
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{DATABASE}"

    def stop(self) -> None:
        if (self.data / "postmaster.pid").is_file():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)


def start(folder: str | Path, port: int = 5000, pg_port: int = 0, host: str = "127.0.0.1") -> Server:
    """Start PostgreSQL and the MLflow server; returns once the server answers its health check."""
    folder = Path(folder).resolve()
    if not port_free(host, port):
        raise UserError(f"port {port} is in use on {host}; pass --port with a free port for the tracking server")
    postgres = PostgresCluster(folder, pg_port)
    postgres.start()
    artifacts = folder / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    mlflow = Path(sys.executable).parent / "mlflow"
    command = [str(mlflow if mlflow.exists() else "mlflow"), "server", "--backend-store-uri", postgres.uri]
    command += ["--artifacts-destination", str(artifacts), "--serve-artifacts", "--host", host, "--port", str(port)]
    environment = {**os.environ, "no_proxy": "127.0.0.1,localhost", "NO_PROXY": "127.0.0.1,localhost"}
    log = open(folder / "mlflow-server.log", "ab")  # noqa: SIM115  (the server's lifetime, closed by the child)
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment, start_new_session=True)
    log.close()
    uri = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    server = Server(uri, postgres.uri, folder, postgres, process)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            server.stop()
            raise UserError(f"the MLflow server exited at start; see {folder / 'mlflow-server.log'}")
        try:
            with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(uri + "/health", timeout=2) as reply:
                if reply.status == 200:
                    return server
        except OSError:
            time.sleep(0.5)
    server.stop()
    log_path = folder / "mlflow-server.log"
    raise UserError(f"the MLflow server did not answer within {START_TIMEOUT_S:.0f} s; see {log_path}")


def run(folder: str, port: int, pg_port: int, host: str) -> None:
    """The command: start, print the URI, wait for Ctrl-C or SIGTERM, stop."""
    server = start(folder, port, pg_port, host)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    print(f"tracking-server: PostgreSQL {server.backend_uri}, artifacts in {server.folder / 'artifacts'}")
    print(f"export MLFLOW_TRACKING_URI={server.uri}", flush=True)
    try:
        while not stopping and server.mlflow.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    print("tracking-server: stopped", flush=True)
