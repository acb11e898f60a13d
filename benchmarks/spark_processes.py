"""Real Spark processes on this machine: a standalone cluster (a master and workers) and a Spark Connect server.

Each is started with the installed PySpark's own launcher, `pyspark/bin/spark-class` (SPARK_HOME is the
pyspark package folder, whose jars/ hold Spark's, the Spark Connect server's among them), in a process group
of its own, bound to 127.0.0.1 on free ports, its log and work folders under the folder given. A start waits
until the process is ready (its port open, its log line written) and fails with the log's tail otherwise;
`stop` kills the whole group (a worker's executors with it). Memory is kept small and Spark is tuned for
tiny tables (TINY_DATA), as the tests' local Spark is.

    with standalone_cluster(folder) as cluster:   # cluster.master: spark://127.0.0.1:PORT
        connect(cluster.url(warehouse))           # pyspark://spark://127.0.0.1:PORT?warehouse=...
    with connect_server(folder) as server:        # server.url: sc://127.0.0.1:PORT
        ...

Used by tests/spark_cluster.py (fixtures) and benchmarks/spark.py.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

#: Spark tuned for a dozen rows (as tests/engines.py's TINY_DATA): one shuffle partition, no adaptive
#: re-planning, expressions interpreted rather than compiled, the JVM's quick compiler only.
TINY_DATA = {
    "spark.sql.shuffle.partitions": "1",
    "spark.sql.adaptive.enabled": "false",
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
}
#: JVM options of every Spark process started here: the quick compiler only, one garbage collector thread.
JAVA_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
#: Heap of the master and of each worker daemon (not of the executors a worker starts).
DAEMON_MEMORY = "256m"
#: Heap of each executor and of a Spark Connect server's driver.
EXECUTOR_MEMORY = "512m"
DRIVER_MEMORY = "2g"
#: The class of the Spark Connect server, in pyspark/jars/spark-connect_*.jar.
CONNECT_SERVER = "org.apache.spark.sql.connect.service.SparkConnectServer"
#: Seconds a process may take to be ready (a JVM starts in 3-10 s on 2 busy cores).
START_TIMEOUT = 180.0


def spark_home() -> Path:
    """The installed pyspark package folder, which holds bin/spark-class and jars/."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the process that started it dies (an interrupted test run)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@dataclass
class SparkProcess:
    """One Spark JVM (with whatever it starts), in a process group of its own, writing `log`."""

    name: str
    process: subprocess.Popen
    log: Path

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def log_has(self, text: str) -> bool:
        try:
            return text in self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False

    def wait_until(self, ready: Callable[[], bool], timeout: float = START_TIMEOUT) -> None:
        """Return once ready() holds; kill the process and raise, with the log's tail, when it exits or times out."""
        deadline = time.monotonic() + timeout
        while not ready():
            code = self.process.poll()
            if code is not None or time.monotonic() > deadline:
                self.stop()
                why = f"exited with code {code}" if code is not None else f"not ready after {timeout:.0f} s"
                raise RuntimeError(f"Spark {self.name} {why}; the end of {self.log}:\n{self.tail()}")
            time.sleep(0.2)

    def stop(self, grace: float = 10.0) -> None:
        """Kill the process group: SIGTERM, SIGKILL after `grace` seconds."""
        if self.process.poll() is None or _group_alive(self.process.pid):
            for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, sig)
                deadline = time.monotonic() + wait
                while _group_alive(self.process.pid) and time.monotonic() < deadline:
                    self.process.poll()
                    time.sleep(0.1)
                if not _group_alive(self.process.pid):
                    break
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie leader still counts until reaped: reap it if it is ours.
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pgid, os.WNOHANG)[0] == pgid:
            return _group_alive(pgid)
    return True


def _environment(folder: Path, extra: Mapping[str, str] = ()) -> dict[str, str]:
    home = spark_home()
    conf = folder / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    environment = {
        **os.environ,
        "SPARK_HOME": str(home),
        # An empty configuration folder: no spark-defaults.conf or spark-env.sh of this machine's leaks in.
        "SPARK_CONF_DIR": str(conf),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(folder),
        "SPARK_DAEMON_MEMORY": DAEMON_MEMORY,
        "SPARK_DAEMON_JAVA_OPTS": JAVA_OPTIONS,
        "PYSPARK_PYTHON": sys.executable,
        **dict(extra),
    }
    # A Spark Connect client sets this in its process; a JVM started from it must not see it.
    environment.pop("SPARK_CONNECT_MODE_ENABLED", None)
    environment.pop("SPARK_REMOTE", None)
    return environment


def start_process(name: str, arguments: list[str], folder: Path, environment: Mapping[str, str] = ()) -> SparkProcess:
    """`spark-class arguments…` in a new process group, its output in folder/<name>.log."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen([str(spark_home() / "bin" / "spark-class"), *arguments], stdin=subprocess.DEVNULL,
                                   stdout=output, stderr=subprocess.STDOUT, cwd=folder,
                                   env=_environment(folder, environment), start_new_session=True,
                                   preexec_fn=_die_with_parent)
    return SparkProcess(name, process, log)


def _conf_arguments(settings: Mapping[str, str]) -> list[str]:
    return [part for name, value in settings.items() for part in ("--conf", f"{name}={value}")]


@dataclass
class StandaloneCluster:
    """A standalone master and its workers on 127.0.0.1."""

    master: str
    folder: Path
    processes: list[SparkProcess] = field(default_factory=list)

    def settings(self) -> dict[str, str]:
        """The Spark settings of an application on this cluster: small executors, one core each, tiny data."""
        return {
            **TINY_DATA,
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.driver.extraJavaOptions": JAVA_OPTIONS,
            "spark.executor.memory": EXECUTOR_MEMORY,
            "spark.executor.cores": "1",
            "spark.cores.max": str(len(self.processes) - 1),
            "spark.executor.extraJavaOptions": JAVA_OPTIONS,
        }

    def url(self, warehouse: Path) -> str:
        """retailflow's URL of a warehouse folder run on this cluster."""
        settings = "&".join(f"{name}={quote(value, safe=':+=-')}" for name, value in self.settings().items())
        return f"pyspark://{self.master}?warehouse={warehouse}&{settings}"

    def stop(self) -> None:
        """Workers first, then the master."""
        for process in reversed(self.processes):
            process.stop()


def start_cluster(folder: Path, workers: int = 2, worker_memory: str = EXECUTOR_MEMORY,
                  timeout: float = START_TIMEOUT) -> StandaloneCluster:
    """A standalone master and `workers` workers of one core each, every one ready; stop() it afterwards."""
    port = free_port()
    cluster = StandaloneCluster(master=f"spark://127.0.0.1:{port}", folder=folder)
    try:
        master = start_process("master", ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                                          "--port", str(port), "--webui-port", str(free_port())], folder)
        cluster.processes.append(master)
        master.wait_until(lambda: _port_open(port) and master.log_has("ALIVE"), timeout)
        started = []
        for index in range(workers):
            work = folder / f"worker-{index + 1}"
            work.mkdir(parents=True, exist_ok=True)
            worker = start_process(f"worker-{index + 1}", [
                "org.apache.spark.deploy.worker.Worker", cluster.master, "--host", "127.0.0.1",
                "--cores", "1", "--memory", worker_memory, "--work-dir", str(work), "--webui-port", str(free_port())],
                folder, {"SPARK_WORKER_DIR": str(work)})
            cluster.processes.append(worker)
            started.append(worker)
        for worker in started:
            worker.wait_until(lambda worker=worker: worker.log_has("Successfully registered with master"), timeout)
    except BaseException:
        cluster.stop()
        raise
    return cluster


@contextlib.contextmanager
def standalone_cluster(folder: Path, workers: int = 2) -> Iterator[StandaloneCluster]:
    """A running standalone cluster (see start_cluster), killed on the way out."""
    cluster = start_cluster(folder, workers)
    try:
        yield cluster
    finally:
        cluster.stop()


@dataclass
class ConnectServer:
    """A Spark Connect server on 127.0.0.1."""

    url: str
    warehouse: Path
    process: SparkProcess

    def stop(self) -> None:
        self.process.stop()


def start_connect_server(folder: Path, master: str = "local[2]", settings: Mapping[str, str] = (),
                         timeout: float = START_TIMEOUT) -> ConnectServer:
    """A Spark Connect server (spark-submit of SparkConnectServer) whose catalog is its own, in memory, and whose
    tables are under folder/warehouse; ready when its port accepts connections. stop() it afterwards."""
    port = free_port()
    warehouse = folder / "warehouse"
    server_settings = {
        **TINY_DATA,
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.memory": DRIVER_MEMORY,
        "spark.driver.extraJavaOptions": JAVA_OPTIONS,
        "spark.executor.memory": EXECUTOR_MEMORY,
        "spark.executor.extraJavaOptions": JAVA_OPTIONS,
        "spark.sql.catalogImplementation": "in-memory",
        "spark.sql.warehouse.dir": str(warehouse),
        "spark.ui.enabled": "false",
        **dict(settings),
    }
    # Spark's launcher treats the server as a daemon: its heap is SPARK_DAEMON_MEMORY, not spark.driver.memory.
    process = start_process("connect-server", [
        "org.apache.spark.deploy.SparkSubmit", "--class", CONNECT_SERVER, "--name", "retailflow-connect",
        "--master", master, *_conf_arguments(server_settings), "spark-internal"], folder,
        {"SPARK_DAEMON_MEMORY": DRIVER_MEMORY})
    process.wait_until(lambda: _port_open(port), timeout)
    return ConnectServer(url=f"sc://127.0.0.1:{port}", warehouse=warehouse, process=process)


@contextlib.contextmanager
def connect_server(folder: Path, master: str = "local[2]") -> Iterator[ConnectServer]:
    """A running Spark Connect server (see start_connect_server), killed on the way out."""
    server = start_connect_server(folder, master)
    try:
        yield server
    finally:
        server.stop()
