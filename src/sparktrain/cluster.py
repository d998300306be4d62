"""A real Spark standalone cluster, and a Spark Connect server, on this machine.

Both run from the installed ``pyspark`` package (its ``spark-class`` and
jars), bound to 127.0.0.1, so the distributed code paths can be tried and
tested without downloading Spark.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sparktrain.errors import ClusterError
from sparktrain.java import find_java

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
START_TIMEOUT_S = 90.0
STATE_FILE = "cluster.json"


def spark_home() -> Path:
    """The folder of the installed pyspark package, which is a Spark home."""
    import pyspark

    return Path(pyspark.__file__).parent


def default_state_dir() -> Path:
    """Where ``sparktrain cluster`` keeps pids and logs between commands."""
    root = os.environ.get("SPARKTRAIN_HOME") or Path.home() / ".sparktrain"
    return Path(root) / "cluster"


def port_is_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@dataclass
class ClusterState:
    """What a started cluster is made of, as written to its state file."""

    master_url: str
    web_url: str
    master_pid: int
    worker_pids: list[int] = field(default_factory=list)
    log_dir: str = ""


class LocalCluster:
    """A standalone Spark master and workers as local processes.

    Parameters
    ----------
    workers : int
        Number of worker processes.
    cores : int
        Cores each worker offers.
    memory : str
        Memory each worker offers to executors, such as ``"1g"``.
    port, web_port : int
        Master's RPC port and web UI port on 127.0.0.1.
    state_dir : path, optional
        Where pids and logs go; defaults to ``~/.sparktrain/cluster``.

    Examples
    --------
    >>> with LocalCluster(workers=2) as cluster:  # doctest: +SKIP
    ...     spark = sparktrain.session(master=cluster.master_url)
    """

    def __init__(
        self,
        *,
        workers: int = 2,
        cores: int = 1,
        memory: str = "1g",
        port: int = 7077,
        web_port: int = 8080,
        state_dir: str | Path | None = None,
    ) -> None:
        if workers < 1:
            raise ClusterError(f"workers={workers}; a cluster needs at least 1 worker")
        if cores < 1:
            raise ClusterError(f"cores={cores}; each worker needs at least 1 core")
        self.workers = workers
        self.cores = cores
        self.memory = memory
        self.port = port
        self.web_port = web_port
        self.state_dir = Path(state_dir) if state_dir else default_state_dir()

    @property
    def master_url(self) -> str:
        return f"spark://{HOST}:{self.port}"

    @property
    def web_url(self) -> str:
        return f"http://{HOST}:{self.web_port}"

    def start(self) -> ClusterState:
        """Start the master and workers; return once every worker registered."""
        existing = read_state(self.state_dir)
        if existing is not None and _alive(existing.master_pid):
            raise ClusterError(
                f"a cluster from {self.state_dir} is already running at "
                f"{existing.master_url}; stop it first (sparktrain cluster stop)"
            )
        for name, port in (("port", self.port), ("web port", self.web_port)):
            if not port_is_free(port):
                raise ClusterError(
                    f"{name} {port} on {HOST} is already in use; choose another "
                    f"(--port/--web-port) or stop what listens there"
                )
        find_java()
        self.state_dir.mkdir(parents=True, exist_ok=True)

        master = self._spawn(
            "master",
            [
                "org.apache.spark.deploy.master.Master",
                "--host",
                HOST,
                "--port",
                str(self.port),
                "--webui-port",
                str(self.web_port),
            ],
        )
        state = ClusterState(
            self.master_url, self.web_url, master.pid, log_dir=str(self.state_dir)
        )
        try:
            _wait_for_port(self.port, master, self.state_dir / "master.log")
            for i in range(self.workers):
                worker = self._spawn(f"worker-{i}", self._worker_args(i))
                state.worker_pids.append(worker.pid)
            write_state(self.state_dir, state)
            self._wait_for_workers(state)
        except BaseException:
            _terminate([*state.worker_pids, state.master_pid])
            (self.state_dir / STATE_FILE).unlink(missing_ok=True)
            raise
        logger.info("started %s with %d worker(s)", self.master_url, self.workers)
        return state

    def _worker_args(self, index: int) -> list[str]:
        work_dir = self.state_dir / f"worker-{index}"
        return [
            "org.apache.spark.deploy.worker.Worker",
            "--host",
            HOST,
            "--cores",
            str(self.cores),
            "--memory",
            self.memory,
            "--webui-port",
            "0",
            "--work-dir",
            str(work_dir),
            self.master_url,
        ]

    def _spawn(self, name: str, arguments: list[str]) -> subprocess.Popen:
        log = (self.state_dir / f"{name}.log").open("wb")
        command = [str(spark_home() / "bin" / "spark-class"), *arguments]
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_spark_env(),
            start_new_session=True,
        )

    def _wait_for_workers(self, state: ClusterState) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            alive = master_status(state.web_url).get("aliveworkers", 0)
            if alive >= self.workers:
                return
            dead = [p for p in state.worker_pids if not _alive(p)]
            if dead:
                raise ClusterError(
                    f"a worker exited while starting; see the logs in {self.state_dir}"
                )
            time.sleep(0.5)
        raise ClusterError(
            f"{self.workers} worker(s) did not register with {self.master_url} within "
            f"{START_TIMEOUT_S:.0f}s; see the logs in {self.state_dir}"
        )

    def stop(self) -> bool:
        """Stop the cluster recorded in the state folder; False if none ran."""
        return stop_cluster(self.state_dir)

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def read_state(state_dir: Path) -> ClusterState | None:
    path = Path(state_dir) / STATE_FILE
    if not path.is_file():
        return None
    return ClusterState(**json.loads(path.read_text()))


def write_state(state_dir: Path, state: ClusterState) -> None:
    (Path(state_dir) / STATE_FILE).write_text(json.dumps(asdict(state), indent=2))


def stop_cluster(state_dir: Path) -> bool:
    """Stop the processes a state folder records and forget them."""
    state = read_state(state_dir)
    if state is None:
        return False
    _terminate([*state.worker_pids, state.master_pid])
    (Path(state_dir) / STATE_FILE).unlink(missing_ok=True)
    logger.info("stopped %s", state.master_url)
    return True


def cluster_status(state_dir: Path) -> dict[str, Any]:
    """Whether the recorded cluster runs, and what its master reports."""
    state = read_state(state_dir)
    if state is None:
        return {"running": False, "state_dir": str(state_dir)}
    running = _alive(state.master_pid)
    status: dict[str, Any] = {
        "running": running,
        "master_url": state.master_url,
        "web_url": state.web_url,
        "workers_started": len(state.worker_pids),
        "workers_alive": sum(_alive(p) for p in state.worker_pids),
        "log_dir": state.log_dir,
    }
    if running:
        reported = master_status(state.web_url)
        status["workers_registered"] = reported.get("aliveworkers", 0)
        status["cores"] = reported.get("cores", 0)
        status["memory_mb"] = reported.get("memory", 0)
    return status


def master_status(web_url: str) -> dict[str, Any]:
    """The master's JSON status page, or {} when it does not answer yet."""
    try:
        with urllib.request.urlopen(f"{web_url}/json/", timeout=5) as response:
            return json.loads(response.read())
    except (OSError, ValueError):
        return {}


class LocalConnectServer:
    """A Spark Connect server on 127.0.0.1, run from the pyspark package.

    Parameters
    ----------
    port : int
        gRPC port; ``sparktrain.session(remote=server.url)`` connects to it.
    master : str
        Where the server runs its work, ``local[1]`` by default.
    log_dir : path
        Where the server's log goes.
    """

    def __init__(
        self,
        *,
        port: int = 15002,
        master: str = "local[1]",
        log_dir: str | Path | None = None,
    ) -> None:
        self.port = port
        self.master = master
        self.log_dir = Path(log_dir) if log_dir else default_state_dir()
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"sc://{HOST}:{self.port}"

    def start(self) -> None:
        if not port_is_free(self.port):
            raise ClusterError(
                f"port {self.port} on {HOST} is already in use; choose another port "
                "or stop what listens there"
            )
        find_java()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"connect-{self.port}.log"
        command = [
            str(spark_home() / "bin" / "spark-submit"),
            "--class",
            "org.apache.spark.sql.connect.service.SparkConnectServer",
            "--master",
            self.master,
            "--conf",
            f"spark.connect.grpc.binding.address={HOST}",
            "--conf",
            f"spark.connect.grpc.binding.port={self.port}",
            "--conf",
            "spark.ui.enabled=false",
            "--conf",
            f"spark.pyspark.python={sys.executable}",
            "spark-internal",
        ]
        self._process = subprocess.Popen(
            command,
            stdout=log_path.open("wb"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_spark_env(),
            start_new_session=True,
        )
        try:
            _wait_for_port(self.port, self._process, log_path)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self._process is not None:
            _terminate([self._process.pid])
            self._process = None

    def __enter__(self) -> LocalConnectServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _spark_env() -> dict[str, str]:
    env = dict(os.environ)
    env["SPARK_HOME"] = str(spark_home())
    env["PYSPARK_PYTHON"] = sys.executable
    env["SPARK_CONNECT_MODE"] = "0"
    env.setdefault("SPARK_NO_DAEMONIZE", "1")
    return env


def _wait_for_port(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            raise ClusterError(
                f"the Spark process exited with code {process.returncode} before "
                f"listening on {HOST}:{port}; its log {log} ends with:\n{tail}"
            )
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.3)
    raise ClusterError(
        f"nothing listened on {HOST}:{port} within {START_TIMEOUT_S:.0f}s; see {log}"
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _not_zombie(pid)


def _not_zombie(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    if not stat.exists():
        return True
    return stat.read_text().split(")")[-1].split()[0] != "Z"


def _terminate(pids: list[int], grace_s: float = 10.0) -> None:
    for pid in pids:
        if _alive(pid):
            try:
                os.killpg(pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                _kill_quietly(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    for pid in pids:
        if _alive(pid):
            _kill_quietly(pid, signal.SIGKILL)
    for pid in pids:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def _kill_quietly(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
