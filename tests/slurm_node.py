"""A single-node Slurm cluster on loopback for one test: munged, slurmctld and slurmd from
Debian's packages (``apt-get install slurm-wlm munge``), each started in the foreground
with a configuration, a key and state of their own in a temporary folder, and always stopped.
"""
import os
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "sinfo", "scancel")
NODE = "rdfia-node"
START_SECONDS = 60  # from the daemons' start to the node idle; under a second on an idle machine


def program(name: str) -> str | None:
    """``name`` on PATH, else in /usr/sbin, where Debian puts the daemons."""
    found = shutil.which(name) or Path("/usr/sbin", name)
    return str(found) if Path(found).is_file() else None


def absent() -> list[str]:
    """The daemons and commands that this machine lacks."""
    return [name for name in DAEMONS + CLIENTS if program(name) is None]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(root: Path) -> str:
    memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1 << 20)
    return "\n".join([
        "ClusterName=rdfia-test", "SlurmctldHost=localhost(127.0.0.1)", f"SlurmctldPort={_free_port()}",
        f"SlurmdPort={_free_port()}", "SlurmUser=root", "AuthType=auth/munge", "CredType=cred/munge",
        f"AuthInfo=socket={root}/munge.socket", f"StateSaveLocation={root}/state", f"SlurmdSpoolDir={root}/spool",
        f"SlurmctldPidFile={root}/slurmctld.pid", f"SlurmdPidFile={root}/slurmd.pid",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "JobAcctGatherType=jobacct_gather/none",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_CPU", "SlurmdParameters=config_overrides",
        "ReturnToService=2", "MpiDefault=none",
        f"NodeName={NODE} NodeAddr=127.0.0.1 CPUs={os.cpu_count() or 1} RealMemory={memory_mb} State=UNKNOWN",
        f"PartitionName=test Nodes={NODE} Default=YES MaxTime=INFINITE State=UP", ""])


def _wait_idle(env: dict, logs: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        state = subprocess.run([program("sinfo"), "-h", "-N", "-o", "%T"], env=env, capture_output=True, text=True)
        if state.stdout.strip() == "idle":
            return
        time.sleep(0.5)
    raise RuntimeError(f"the Slurm node did not become idle in {START_SECONDS} s; logs in {logs}")


@contextmanager
def slurm_node(root: Path):
    """Start the three daemons with a configuration in ``root``; yield the environment in
    which sbatch and squeue reach them (``SLURM_CONF``); stop them, whatever happened."""
    for d in ("state", "spool"):
        (root / d).mkdir()
    (root / "munge.key").write_bytes(os.urandom(1024))
    (root / "munge.key").chmod(0o600)
    conf = root / "slurm.conf"
    conf.write_text(_config(root))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    commands = [[program("munged"), "--foreground", "--force", f"--key-file={root}/munge.key",
                 f"--socket={root}/munge.socket", f"--pid-file={root}/munged.pid",
                 f"--log-file={root}/munged.log", f"--seed-file={root}/munged.seed"],
                [program("slurmctld"), "-D", "-f", str(conf)],
                [program("slurmd"), "-D", "-f", str(conf), "-N", NODE]]
    started = []
    try:
        for argv in commands:
            log = open(root / f"{Path(argv[0]).name}.out", "w")
            started.append(subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT))
            log.close()
            if argv[0].endswith("munged"):
                _wait_for(root / "munge.socket")
        _wait_idle(env, root)
        yield env
    finally:
        if len(started) == len(commands):  # no job of this test outlives it
            subprocess.run([program("scancel"), "--user", "root"], env=env, capture_output=True, timeout=30)
        for process in reversed(started):
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for(path: Path, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
