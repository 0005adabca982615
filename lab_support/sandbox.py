"""A throwaway, confined directory for one untrusted notebook kernel (used by the grader).

Layout of one sandbox, a fresh temporary directory per notebook run::

    ROOT/pyproject.toml lab_support/ src/ migrations/ .claude/ docs/notes/
                      read-only copies of PROJECT_FILES: what notebooks import or read.
                      The pyproject.toml makes ROOT the kernel's "project root", so ``.lab``
                      and ``../docs/notes`` resolve inside the sandbox as in a checkout.
    ROOT/submission/  the learner's notebook (or folder of notebooks and the files beside
                      them); the kernel's cwd
    ROOT/home/        HOME (IPython, Jupyter and matplotlib state)
    ROOT/tmp/         TMPDIR
    ROOT/.lab/        the sandbox's own lab state (Postgres data, predictions, ...)

The kernel starts as ``python -m lab_support.sandbox exec POLICY -- ARGV``: that process
confines itself, then execs ARGV, so the kernel and everything it starts inherit:

* **Landlock** (Linux >= 5.13, through ``landlockpy``): reading only the system and Python
  install directories and the sandbox, writing only its four writable folders and a few
  devices. From Landlock ABI 6 it also cannot signal (or ptrace) any process outside the
  sandbox, so it cannot kill the process that watches and cleans up after it.
* **TCP ports** (Landlock ABI >= 4): ``bind`` only to the ports of the job's own
  ``PortBlock`` and ``connect`` only to those and to the ports the grader names (the
  notebook's engine). See "Ports" below.
* **rlimits**: address space per process (RLIMIT_AS), file size, no core files.
* **almost no capabilities** when run as root: the bounding set keeps only what pgserver
  needs to run Postgres as its own user (KEPT_CAPABILITIES) and the ambient set is emptied
  before the exec, so root inside cannot raise its limits, load modules or trace anyone.

Detached processes (double fork, ``setsid``) are re-parented to the nearest *child
subreaper* ancestor. The grader's job process makes itself one (``become_subreaper``), so
``kill_all`` finds every process a submission left behind and kills it (freeze first, then
kill, until two looks in a row find nothing).

Without Landlock (another OS, an old kernel) the copies are still read-only by file mode,
HOME/cwd/TMPDIR still point inside, and the limits and the process clean-up still apply;
the policy then says ``"confined": false`` and the grader reports it.

**Ports.** Landlock rules name ports when the ruleset is made, before the kernel starts, so
"the ports this kernel binds later" cannot be a rule; ports the OS hands out on ``bind(0)``
(the ephemeral range) are where every other job's engine and hosts live too. So each job
reserves a ``PortBlock``: ``PORT_BLOCK_SIZE`` consecutive ports outside the ephemeral range,
held with an exclusive ``flock`` on ``PORT_LOCK_DIR/<first>.lock`` for the job's lifetime (no
two jobs, not even of two grader runs on one machine, hold the same block; the lock dies
with the process). Ports of the block that something already listens on are left out. The
kernel's five ZMQ channels take the first free ports; the rest are ``LAB_PORTS=first-last``
in the kernel's environment, where ``lab_support.host.free_port`` picks from them, so every
host, engine or model server the notebook starts binds inside the block. Engines the grader
starts bind ephemeral ports, which no block contains: a kernel can connect to its own block
and its own engine, never to another job's. Where the ABI is below 4 the policy says
``"net_confined": false`` and the grader warns.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import fcntl
import json
import os
import resource
import shutil
import signal
import site
import socket
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
# Everything a notebook may import or read from the project; nothing else is copied
# (never solutions/, exercises/, tests/, .lab/ or other students' work).
PROJECT_FILES = ("pyproject.toml", "lab_support", "src", "migrations", ".claude", "docs/notes")
WRITABLE = ("submission", "home", "tmp", ".lab")
SYSTEM_READ = ("/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/etc", "/proc", "/sys")
# /dev/shm: Postgres (pgserver) and multiprocessing create their shared memory there.
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
SHARED_MEMORY = "/dev/shm"
COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", ".lab")
CONFINE_MODES = ("auto", "landlock", "none")
EXIT_CONFINEMENT_FAILED = 97
NET_ABI = 4                     # Landlock ABI that can restrict TCP bind/connect by port
PORT_BLOCK_SIZE = 64            # ports one job's kernel may bind (5 go to the ZMQ channels)
KERNEL_CHANNELS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
PORT_REGION = (10_000, 65_535)  # where blocks are taken from, minus the ephemeral range
PORT_LOCK_DIR = Path(tempfile.gettempdir()) / "lab-grader-ports"

PR_SET_CHILD_SUBREAPER = 36
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
# Kept for root: what pgserver needs to run Postgres as its own user (chown, setuid/setgid,
# reach that user's files, stop its processes). Dropped: everything else, above all
# CAP_SYS_RESOURCE (raising limits), CAP_SYS_ADMIN, CAP_SYS_MODULE, CAP_SYS_PTRACE.
KEPT_CAPABILITIES = {0, 1, 2, 3, 5, 6, 7}  # CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER KILL SETGID SETUID


class SandboxError(RuntimeError):
    """The sandbox cannot be built or confined as asked; the message says why."""


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when there is none (or no landlockpy)."""
    try:
        import landlockpy
    except ImportError:
        return 0
    try:
        return landlockpy.abi_version()
    except Exception:
        return 0


def net_confinable(confine: str) -> bool:
    """Will a kernel confined with ``confine`` have its TCP ports restricted here?"""
    return confine != "none" and landlock_abi() >= NET_ABI


def ephemeral_range() -> tuple[int, int]:
    """The ports the OS hands out on bind(0) and connect (Linux's default where unreadable)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32_768, 60_999


def _listening(port: int) -> bool:
    """Is some process bound to ``port`` on IPv4 or IPv6 loopback? (SO_REUSEADDR: a port
    left in TIME_WAIT is not.)"""
    for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        try:
            probe = socket.socket(family, socket.SOCK_STREAM)
        except OSError:  # no IPv6 here
            continue
        with probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((address, port))
            except OSError as exc:
                if exc.errno != errno.EADDRNOTAVAIL:  # ::1 missing is not "in use"
                    return True
    return False


class PortBlock:
    """Consecutive TCP ports reserved for one job's kernel; see "Ports" in the module doc."""

    def __init__(self, first: int, size: int, lock_fd: int) -> None:
        self.first, self.size, self._lock_fd = first, size, lock_fd
        # Left out: ports something else already listens on (the kernel must not reach it).
        self.ports = [p for p in range(first, first + size) if not _listening(p)]
        if len(self.ports) <= len(KERNEL_CHANNELS):
            self.release()
            raise SandboxError(f"ports {first}-{first + size - 1} are almost all in use")

    @property
    def channels(self) -> dict[str, int]:
        """Ports for the kernel's connection file (jupyter_client's trait names)."""
        return dict(zip(KERNEL_CHANNELS, self.ports))

    @property
    def spare(self) -> str:
        """``LAB_PORTS`` for the kernel: the span after the channels (busy ports are skipped
        by ``free_port`` because it cannot bind them)."""
        return f"{self.ports[len(KERNEL_CHANNELS)]}-{self.first + self.size - 1}"

    def release(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)       # closing the file drops the flock
            self._lock_fd = -1


def reserve_ports(size: int = PORT_BLOCK_SIZE, lock_dir: Path | None = None) -> PortBlock:
    """The first block of ``size`` ports outside the ephemeral range that no other job holds."""
    lock_dir = lock_dir or PORT_LOCK_DIR
    try:
        lock_dir.mkdir()
        lock_dir.chmod(0o1777)  # shared by every grading user, like /tmp itself
    except FileExistsError:
        pass
    except OSError as exc:
        raise SandboxError(f"cannot make {lock_dir} for the port locks: {exc}") from exc
    low, high = ephemeral_range()
    for first in range(PORT_REGION[0], PORT_REGION[1] - size + 2, size):
        last = first + size - 1
        if first <= high and last >= low:
            continue
        try:
            fd = os.open(lock_dir / f"{first}.lock", os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise SandboxError(f"cannot open {lock_dir}/{first}.lock: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                continue
            raise SandboxError(f"cannot lock {lock_dir}/{first}.lock: {exc}") from exc
        try:
            return PortBlock(first, size, fd)
        except SandboxError:
            continue
    raise SandboxError(f"no block of {size} free ports is left between {PORT_REGION[0]} and "
                       f"{PORT_REGION[1]} outside the ephemeral range {low}-{high}")


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def python_read_paths() -> list[str]:
    """Where this interpreter and its packages live (a venv, its base install, site dirs)."""
    found = [sys.prefix, sys.base_prefix, sys.exec_prefix,
             str(Path(os.path.realpath(sys.executable)).parents[1]), *site.getsitepackages()]
    user_site = site.getusersitepackages()
    if user_site and os.path.isdir(user_site):
        found.append(user_site)
    return found


def _make_read_only(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _ensure_postgres_user() -> None:
    """pgserver runs Postgres as the system user ``pgserver`` when started by root and creates
    that user on first use; inside the sandbox ``/etc`` is read-only, so create it here, on the
    grader's trusted side, before any kernel needs it (a fresh machine has no such user yet)."""
    try:
        from pgserver.utils import ensure_user_exists
    except ImportError:  # no pgserver, no Postgres in notebooks
        return
    try:
        ensure_user_exists("pgserver")
    except Exception as exc:  # useradd missing or refused: Postgres notebooks will say why
        print(f"warning: could not create the pgserver user ({exc})", file=sys.stderr)


def _force_remove(func, path, _exc) -> None:
    """rmtree helper: a submission may leave folders without write or search bits."""
    try:
        os.chmod(os.path.dirname(path) or ".", 0o700)
        os.chmod(path, 0o700)
    except OSError:
        pass
    func(path)


class Sandbox:
    """One notebook run's throwaway directory; build with :meth:`create`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.submission = root / "submission"
        self.home = root / "home"
        self.tmp = root / "tmp"
        self.lab = root / ".lab"
        self.runtime = root / "runtime"  # the kernel's connection file (read-only for it)

    @classmethod
    def create(cls, base: Path, name: str, submission: Path,
               project_root: Path = ROOT) -> "Sandbox":
        """Copy PROJECT_FILES (read-only) and the submission into ``base/name``.

        ``submission`` is a folder (copied whole: notebooks and the files beside them) or a
        single notebook (copied alone: files next to it may be other students' work).
        Symlinks are copied as links, never followed, so a link to the instructor's files
        leads nowhere the kernel may read.
        """
        root = Path(base) / name
        if root.exists():
            raise SandboxError(f"{root} already exists")
        box = cls(root)
        root.mkdir(parents=True)
        for rel in PROJECT_FILES:
            src = project_root / rel
            dst = root / rel
            if src.is_dir():
                shutil.copytree(src, dst, symlinks=True, ignore=COPY_IGNORE)
            elif src.is_file():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
        for rel in WRITABLE:
            (root / rel).mkdir(exist_ok=True)
        box.runtime.mkdir()
        if submission.is_dir():
            shutil.copytree(submission, box.submission, symlinks=True, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        else:
            shutil.copy2(submission, box.submission / submission.name)
        for rel in PROJECT_FILES:
            if (root / rel).exists():
                _make_read_only(root / rel)
        return box

    def policy(self, *, memory_mb: int, file_mb: int, confine: str = "auto",
               protected: Iterable[Path] = (), ports: PortBlock | None = None,
               connect: Iterable[int] = ()) -> dict:
        """What ``python -m lab_support.sandbox exec`` enforces for this sandbox.

        ``protected`` are paths the kernel must never reach (the instructor's checkout, the
        submissions, the grader's output): a read grant that contains one is an error.
        ``ports`` may be bound and connected to, ``connect`` only connected to (the engine);
        with Landlock ABI >= 4 every other TCP bind and connect is refused.
        """
        if confine not in CONFINE_MODES:
            raise SandboxError(f"confine must be one of {CONFINE_MODES}, not {confine!r}")
        abi = landlock_abi()
        if confine == "landlock" and abi < 1:
            raise SandboxError(
                "Landlock is not available here (Linux >= 5.13 with Landlock enabled is "
                "needed): grade with --confine auto or none to run without file "
                "confinement, or on a machine that has it.")
        read = [p for p in SYSTEM_READ if os.path.isdir(p)] + python_read_paths()
        read = list(dict.fromkeys(os.path.realpath(p) for p in read + [str(self.root)]))
        write = [str(self.root / rel) for rel in WRITABLE]
        root = Path(os.path.realpath(self.root))
        for guarded in protected:
            guarded = Path(os.path.realpath(guarded))
            if _inside(root, guarded):
                raise SandboxError(f"the sandbox folder {root} lies inside {guarded}, which "
                                   "submissions must not reach; use another --sandbox-dir")
            for grant in read:
                if _inside(guarded, Path(grant)):
                    raise SandboxError(
                        f"{guarded} lies inside {grant}, which every kernel must be able to "
                        "read (system or Python files): move it elsewhere to grade safely")
        devices = [p for p in DEVICES if os.path.exists(p)]
        if os.geteuid() == 0 and confine != "none":
            _ensure_postgres_user()
        if os.path.isdir(SHARED_MEMORY):
            write.append(SHARED_MEMORY)
        bind = sorted(ports.ports) if ports else []
        return {"read": read, "write": write, "devices": devices, "memory_mb": memory_mb,
                "file_mb": file_mb, "confine": confine, "landlock_abi": abi,
                "confined": confine != "none" and abi >= 1,
                "net_confined": confine != "none" and abi >= NET_ABI,
                "bind_ports": bind,
                "connect_ports": sorted(set(bind) | {int(p) for p in connect if 0 < int(p) < 65536})}

    def env(self, extra: dict[str, str] | None = None,
            pass_through: Iterable[str] = ()) -> dict[str, str]:
        """A small, explicit environment: nothing of the instructor's (API keys, tokens)
        reaches the kernel unless named in ``pass_through``."""
        env = {k: v for k, v in os.environ.items()
               if k in {"PATH", "LANG", "LANGUAGE", "TZ", "TERM"} or k.startswith("LC_")}
        env.update({name: os.environ[name] for name in pass_through if name in os.environ})
        env.update({
            "HOME": str(self.home), "TMPDIR": str(self.tmp), "USERPROFILE": str(self.home),
            "PYTHONPATH": os.pathsep.join([str(self.root), str(self.root / "src")]),
            "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
            "MPLBACKEND": "Agg", "MPLCONFIGDIR": str(self.home / ".config" / "matplotlib"),
            "IPYTHONDIR": str(self.home / ".ipython"),
            "JUPYTER_RUNTIME_DIR": str(self.home / ".local" / "share" / "jupyter" / "runtime"),
            "JUPYTER_PLATFORM_DIRS": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            "XDG_RUNTIME_DIR": str(self.tmp),
        })
        env.update(extra or {})
        return env

    def write_policy(self, policy: dict, path: Path) -> Path:
        path.write_text(json.dumps(policy, indent=1), encoding="utf-8")
        return path

    def remove(self) -> None:
        if self.root.exists():
            shutil.rmtree(self.root, onerror=_force_remove)


def launcher(policy_file: Path, argv: list[str]) -> list[str]:
    """The command that confines itself by ``policy_file`` and then runs ``argv``."""
    return [sys.executable, "-m", "lab_support.sandbox", "exec", str(policy_file), "--", *argv]


# -- inside the launcher, just before the exec -------------------------------------------

def apply(policy: dict) -> None:
    """Limits, then capabilities, then Landlock (the order matters: later steps need the
    rights that earlier ones would take away only after they are done)."""
    for limit, mb in ((resource.RLIMIT_AS, policy["memory_mb"]),
                      (resource.RLIMIT_FSIZE, policy["file_mb"])):
        if mb:
            resource.setrlimit(limit, (mb * 1024 * 1024, mb * 1024 * 1024))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if os.geteuid() == 0:
        _drop_capabilities()
    if policy["confine"] != "none":
        if landlock_abi() >= 1:
            _landlock(policy)
        elif policy["confine"] == "landlock":
            raise SandboxError("Landlock was required but is not available")


def _prctl(*args: int) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(*[ctypes.c_ulong(a) for a in args])


def _drop_capabilities() -> None:
    try:
        last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    except (OSError, ValueError):
        last = 40
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    for cap in range(last + 1):
        if cap in KEPT_CAPABILITIES:
            continue
        if _prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise SandboxError(f"could not drop capability {cap}: "
                               f"{os.strerror(ctypes.get_errno())}")


def _landlock(policy: dict) -> None:
    from landlockpy import AccessFS, AccessNet, Ruleset, Scope
    from landlockpy.flags import LATEST_ABI, fs_for_abi

    everything = fs_for_abi(LATEST_ABI)
    read = AccessFS.READ_FILE | AccessFS.READ_DIR | AccessFS.EXECUTE
    file_rights = (AccessFS.READ_FILE | AccessFS.WRITE_FILE | AccessFS.TRUNCATE
                   | AccessFS.IOCTL_DEV)
    # TCP by port (ABI >= 4; best effort drops it below): bind only in the job's block,
    # connect only to it and the engine. UDP and Unix sockets are not port rules.
    tcp = AccessNet.BIND_TCP | AccessNet.CONNECT_TCP
    handled_net = tcp if policy.get("net_confined") else AccessNet.NONE
    with Ruleset(handled_fs=everything, handled_net=handled_net,
                 scoped=Scope.SIGNAL | Scope.ABSTRACT_UNIX_SOCKET) as rules:
        for path in policy["read"]:
            rules.allow_path(path, read)
        for path in policy["write"]:
            rules.allow_path(path, everything)
        for path in policy["devices"]:
            rules.allow_path(path, file_rights)
        if handled_net:
            bind = set(policy.get("bind_ports", []))
            for port in sorted(bind | set(policy.get("connect_ports", []))):
                rules.allow_port(port, tcp if port in bind else AccessNet.CONNECT_TCP)
        rules.restrict()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab_support.sandbox")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("exec", help="confine this process by POLICY, then exec ARGV")
    run.add_argument("policy", type=Path)
    run.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not command:
        parser.error("give the command to run after --")
    try:
        apply(json.loads(args.policy.read_text(encoding="utf-8")))
    except Exception as exc:  # the kernel never starts unconfined by accident
        print(f"lab sandbox: cannot confine the kernel: {exc}", file=sys.stderr, flush=True)
        return EXIT_CONFINEMENT_FAILED
    os.execvp(command[0], command)
    return EXIT_CONFINEMENT_FAILED  # not reached


# -- the watching side: who belongs to the sandbox, and how to end them ------------------

def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux); False where the OS has no such thing."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return _prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except OSError:
        return False


def descendants(exclude: Iterable[int] = ()) -> list[psutil.Process]:
    """Living descendants of this process, minus the trees rooted at ``exclude``."""
    skip: set[int] = set()
    for pid in exclude:
        try:
            root = psutil.Process(pid)
            skip |= {pid, *(p.pid for p in root.children(recursive=True))}
        except psutil.NoSuchProcess:
            continue
    alive = []
    for proc in psutil.Process().children(recursive=True):
        if proc.pid in skip:
            continue
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            continue
    return alive


def kill_all(find: Callable[[], list[psutil.Process]], *, settle_s: float = 0.1,
             max_rounds: int = 100) -> int:
    """Kill what ``find`` returns until two looks in a row find nothing; returns how many.

    Each round stops every process first (a stopped process cannot fork), then kills them;
    children forked in between are orphans the next look finds.
    """
    killed, quiet = 0, 0
    for _ in range(max_rounds):
        procs = find()
        if not procs:
            quiet += 1
            if quiet >= 2:
                break
            time.sleep(settle_s)
            continue
        quiet = 0
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for proc in procs:
                try:
                    proc.send_signal(sig)
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
        psutil.wait_procs(procs, timeout=5)
        killed += len(procs)
    reap_children()
    return killed


def reap_children() -> None:
    """Collect exit statuses of adopted orphans so they do not linger as zombies."""
    for proc in psutil.Process().children():
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(proc.pid, os.WNOHANG)
        except (psutil.NoSuchProcess, ChildProcessError, OSError):
            continue


def tree_memory_mb(procs: Iterable[psutil.Process]) -> float:
    """Memory in use by ``procs``: proportional set size where the OS reports it (shared
    pages such as Postgres buffers count once), resident size otherwise."""
    total = 0
    for proc in procs:
        try:
            try:
                total += proc.memory_full_info().pss
            except (AttributeError, psutil.AccessDenied):
                total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / (1024 * 1024)


if __name__ == "__main__":
    sys.exit(main())
