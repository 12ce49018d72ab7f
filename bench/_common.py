"""What every benchmark in bench/ shares: servers, accounts, memory sampling, the machine, and
the RESULT line that bench/report.py reads.

Import it from a script in bench/ with

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _common as common  # noqa: E402

API (names are stable; bench/load.py and bench/cheap.py rely on them):

  Constants    ROOT (the repository), MEDIAKEEP (the venv's `mediakeep`), HOST ("127.0.0.1"),
               MiB, SAMPLE_EVERY (0.05 s).
  Numbers      parse_size("1G") -> int (binary suffixes K/M/G), label(size) -> "1 GiB",
               mb_per_s(bytes, seconds) (10^6 B/s), percentile(values, q) with q in 0..1
               (nearest rank), median(values), parse_time(rfc3339) -> aware datetime.
  Work dir     work_dir(given: Path | None, prefix) -> context manager yielding a Path; a dir
               it made itself is removed afterwards, a given one is kept.
  Processes    free_port() -> int.
               Process(name, argv, env, log, cwd=None): start(), pid, running, stop() (SIGTERM
               to its own process group, SIGKILL after a timeout; only that group), wait_log(
               mark), rss() and cpu_seconds() of its whole process tree.
               Server(Process) + port, url, ready_path: start() waits until GET ready_path
               answers 200.
               mediakeep_env(data_dir, **overrides) -> env: the caller's environment without
               any MEDIA_/AUTH_/DB_POSTGRESQL/CELERY_/REDIS_ setting, plus SQLite + local
               storage in data_dir, AUTH_ENABLED=false, logs at WARNING, and the overrides
               (values are str()-ed; None removes a key).
               start_mediakeep(work, env=None, *, worker=True, port=None, name="mediakeep",
               workers=1) -> Server: `mediakeep migrate`, then `mediakeep serve [--no-worker]
               [--workers N]` on a free port, ready on /healthz; its log is work/<name>.log.
               With worker=True it also waits for the in-process workers ("mediakeep worker
               ready" in the log).
               tree_rss(pid), tree_cpu_seconds(pid): a process and all its descendants.
               RssSampler(measure) (measure: () -> int bytes, e.g. server.rss): start(), then
               finish() -> peak bytes; samples every SAMPLE_EVERY s. Also a context manager
               (`with RssSampler(f) as s: ...; s.peak`).
               wait_idle(cpu_seconds) blocks until a process tree stops using CPU.
  Load (wrk)   ensure_wrk() -> path or None (apt-get installs it when root).
               run_wrk(wrk, url, paths, concurrency, seconds, headers=None, threads=None,
               timeout="60s", prefix=None) -> dict(requests, seconds, req_per_s, p50_ms,
               p95_ms, p99_ms, max_ms, errors, concurrency): GETs cycling over `paths` (each
               wrk thread takes every threads-th path), wrk's own latency percentiles; `prefix`
               goes before wrk's argv (e.g. ["taskset", "-c", "1"]).
  Accounts     create_account(url, email=None, password=None, key=True) -> Account with
               .email, .token (Bearer), .api_key, .headers (X-API-Key, else Bearer), .org_id:
               registers over HTTP (needs AUTH_ENABLED=true on that server), logs in and
               makes an API key.
  Machine      machine(path=None) -> dict (cpu, cores, memory_gib, filesystem of `path`,
               kernel, python, ffmpeg, libvips, openssl, load average); describe(info) -> one
               line. git_commit() -> short hash ("+dirty" when the tree has changes).
  Output       text_table(header, rows) -> str: columns right-aligned to their widest cell,
               " | " between them, a rule under the header.
               document(benchmark, **fields) -> {"benchmark", "date" (UTC), "commit", **fields}.
               write_json(path, document) writes and prints "wrote <path>".
               goal(name, measured, op, target, unit="", spread=None) -> dict, op one of
               "<=", "<", ">=", ">", with "met" computed; measured None means not measured
               (met False); spread=(low, high), the range over the pairs, adds "low" and
               "high" (report.py shows them after the measured value).
               emit_result(benchmark, goals, **extra) prints the RESULT line.
               skip(benchmark, reason) prints "SKIP: reason" and a RESULT line with
               "skipped", then exits with status 0.

The RESULT convention: the last line a benchmark prints that starts with "RESULT " is one JSON
object,

    RESULT {"benchmark": "video", "goals": [{"name": "wall vs bare ffmpeg", "measured": 1.02,
            "op": "<=", "target": 1.05, "unit": "x", "met": true}, ...], ...extra}

(or {"benchmark": ..., "skipped": "why", "goals": []}). bench/report.py puts every goal in its
summary table and everything the script printed, verbatim, in docs/benchmarks.md.
"""

import contextlib
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
MEDIAKEEP = Path(sys.executable).parent / "mediakeep"
HOST = "127.0.0.1"
MiB = 1024 * 1024
SAMPLE_EVERY = 0.05
_UNITS = {"K": 1024, "M": MiB, "G": 1024 * MiB}
_FOREIGN_SETTINGS = ("MEDIA_", "DB_POSTGRESQL", "AUTH_", "CELERY_", "REDIS_")


# --------------------------------------------------------------------------- numbers


def parse_size(text: str) -> int:
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    if text and text[-1] in _UNITS:
        return int(float(text[:-1]) * _UNITS[text[-1]])
    return int(text)


def label(size: int) -> str:
    for suffix, unit in (("GiB", 1024 * MiB), ("MiB", MiB)):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {suffix}"
    return f"{size} B"


def mb_per_s(size: int, seconds: float) -> float:
    return size / seconds / 1e6


def percentile(values: Iterable[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    index = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[index]


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def parse_time(value: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


@contextlib.contextmanager
def work_dir(given: Path | None, prefix: str) -> Iterator[Path]:
    if given is not None:
        path = given.resolve()
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _tree(pid: int) -> list[psutil.Process]:
    try:
        parent = psutil.Process(pid)
        return [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_rss(pid: int) -> int:
    total = 0
    for process in _tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += process.memory_info().rss
    return int(total)


def tree_cpu_seconds(pid: int) -> float:
    total = 0.0
    for process in _tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            times = process.cpu_times()
            total += times.user + times.system
    return total


class Process:
    """One child in a session of its own, so stopping it reaches its children and nothing
    else."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], log: Path, cwd: Path | None = None
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log = log
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} was not started"
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_log(self, mark: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if mark in self.log_text():
                return
            if not self.running:
                break
            time.sleep(0.05)
        raise SystemExit(f"{self.name}: no {mark!r} in {self.log}:\n{self.log_text()[-3000:]}")

    def rss(self) -> int:
        return tree_rss(self.pid) if self.running else 0

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.pid) if self.running else 0.0

    def stop(self, timeout: float = 20) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        else:
            # The leader is gone; children it left in its group are still ours to end.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)


class Server(Process):
    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        log: Path,
        port: int,
        ready_path: str = "/healthz",
        cwd: Path | None = None,
    ) -> None:
        super().__init__(name, argv, env, log, cwd)
        self.port = port
        self.ready_path = ready_path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 90) -> None:
        super().start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                # The log goes with a temporary work dir: its end is the reason, shown here.
                raise SystemExit(f"{self.name} exited early:\n{self.log_text()[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.url + self.ready_path, timeout=2).status_code == 200:
                    return
            time.sleep(0.05)
        raise SystemExit(f"{self.name} not ready after {timeout:.0f} s:\n{self.log_text()[-3000:]}")


def mediakeep_env(data_dir: Path, **overrides: object) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_SETTINGS)}
    env |= {
        "MEDIA_DATA_DIR": str(data_dir),
        "AUTH_ENABLED": "false",
        "AUTH_SECRET_KEY": "bench-secret-" + "x" * 40,
        "MEDIA_SWEEP_INTERVAL": "1h",
        "MEDIA_LOG_LEVEL": "WARNING",
        "VIPS_BLOCK_UNTRUSTED": "1",
    }
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


def start_mediakeep(
    work: Path,
    env: dict[str, str] | None = None,
    *,
    worker: bool = True,
    port: int | None = None,
    name: str = "mediakeep",
    workers: int = 1,
) -> Server:
    env = env if env is not None else mediakeep_env(work / "data")
    port = port or free_port()
    migrated = subprocess.run(
        [str(MEDIAKEEP), "migrate"], env=env, cwd=work, capture_output=True, text=True
    )
    if migrated.returncode != 0:
        raise SystemExit(f"mediakeep migrate failed:\n{migrated.stdout}{migrated.stderr}")
    argv = [str(MEDIAKEEP), "serve", "--host", HOST, "--port", str(port)]
    if not worker:
        argv.append("--no-worker")
    if workers != 1:
        argv += ["--workers", str(workers)]
    server = Server(name, argv, env, work / f"{name}.log", port, cwd=work)
    try:
        server.start()
        if worker:
            server.wait_log("mediakeep worker ready")
    except BaseException:
        server.stop()
        raise
    return server


class RssSampler(threading.Thread):
    """The peak of `measure()` (bytes), sampled every SAMPLE_EVERY seconds in a thread."""

    def __init__(self, measure: Callable[[], int], every: float = SAMPLE_EVERY) -> None:
        super().__init__(daemon=True)
        self.measure = measure
        self.every = every
        self.peak = measure()
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.every):
            self.peak = max(self.peak, self.measure())

    def finish(self) -> int:
        self._done.set()
        if self.is_alive():
            self.join()
        self.peak = max(self.peak, self.measure())
        return self.peak

    def __enter__(self) -> "RssSampler":
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.finish()


def wait_idle(cpu_seconds: Callable[[], float], timeout: float = 300) -> None:
    """Until a process tree has used no CPU for two half-second looks in a row (a load
    generator that stops leaves the work it started running)."""
    deadline = time.monotonic() + timeout
    quiet = 0
    last = cpu_seconds()
    while time.monotonic() < deadline and quiet < 2:
        time.sleep(0.5)
        now = cpu_seconds()
        quiet = quiet + 1 if now - last < 0.02 else 0
        last = now


# --------------------------------------------------------------------------- wrk

WRK_SCRIPT = r"""
local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
local counter = 0
local next_id = 0
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end
function init(args)
  nthreads = tonumber(os.getenv("BENCH_THREADS"))
end
function request()
  local i = (counter * nthreads + id) % #paths + 1
  counter = counter + 1
  return wrk.format("GET", paths[i])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


def ensure_wrk() -> str | None:
    found = shutil.which("wrk")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False, capture_output=True)
        found = shutil.which("wrk")
    return found


def run_wrk(
    wrk: str,
    url: str,
    paths: list[str],
    concurrency: int,
    seconds: float,
    headers: dict[str, str] | None = None,
    threads: int | None = None,
    timeout: str = "60s",
    prefix: list[str] | None = None,
) -> dict[str, Any]:
    threads = threads or (1 if concurrency <= 8 else 2)
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        script = Path(tmp) / "paths.lua"
        script.write_text(WRK_SCRIPT)
        listing = Path(tmp) / "paths.txt"
        listing.write_text("\n".join(paths) + "\n")
        argv = [
            *(prefix or []),
            wrk,
            f"-t{threads}",
            f"-c{concurrency}",
            f"-d{max(1, round(seconds))}s",
        ]
        argv += ["--timeout", timeout]
        for name, value in (headers or {}).items():
            argv += ["-H", f"{name}: {value}"]
        done = subprocess.run(
            [*argv, "-s", str(script), url],
            env=dict(os.environ, BENCH_PATHS=str(listing), BENCH_THREADS=str(threads)),
            capture_output=True,
            text=True,
            check=False,
        )
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed: {done.stderr or done.stdout}")
    data = json.loads(line.removeprefix("BENCH "))
    elapsed = data["duration_us"] / 1e6
    return {
        "requests": data["requests"],
        "seconds": elapsed,
        "req_per_s": data["requests"] / elapsed,
        "p50_ms": data["p50_us"] / 1000,
        "p95_ms": data["p95_us"] / 1000,
        "p99_ms": data["p99_us"] / 1000,
        "max_ms": data["max_us"] / 1000,
        "errors": sum(data[k] for k in ("connect", "read", "write", "status", "timeout")),
        "concurrency": concurrency,
    }


# --------------------------------------------------------------------------- seed media


def with_comment(jpeg: bytes, text: str) -> bytes:
    """The same picture with other bytes: a COM segment right after SOI."""
    comment = text.encode()
    return jpeg[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + jpeg[2:]


def seed_jpegs(url: str, headers: dict[str, str], jpegs: list[bytes], count: int) -> list[str]:
    """Upload `count` distinct JPEGs (the given ones in turn, each made unique with a comment);
    their media ids."""
    ids = []
    with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
        for index in range(count):
            body = with_comment(jpegs[index % len(jpegs)], f"seed {index}")
            answer = http.post(
                "/api/v1/media/upload", files={"file": (f"seed-{index}.jpg", body, "image/jpeg")}
            )
            if answer.status_code != 201:
                raise SystemExit(f"seed upload answered {answer.status_code}: {answer.text[:300]}")
            ids.append(answer.json()["id"])
    return ids


# --------------------------------------------------------------------------- accounts


@dataclass
class Account:
    email: str
    password: str
    token: str
    api_key: str
    org_id: str

    @property
    def headers(self) -> dict[str, str]:
        if self.api_key:
            return {"X-API-Key": self.api_key}
        return {"Authorization": f"Bearer {self.token}"}


def create_account(
    url: str, email: str | None = None, password: str | None = None, key: bool = True
) -> Account:
    email = email or f"bench-{uuid.uuid4().hex[:12]}@example.com"
    password = password or "bench-" + uuid.uuid4().hex
    with httpx.Client(base_url=url, timeout=30) as http:
        made = http.post("/api/v1/auth/register", json={"email": email, "password": password})
        if made.status_code != 201:
            raise SystemExit(f"register answered {made.status_code}: {made.text[:300]}")
        login = http.post("/api/v1/auth/login", json={"email": email, "password": password})
        if login.status_code != 200:
            raise SystemExit(f"login answered {login.status_code}: {login.text[:300]}")
        token = str(login.json()["access_token"])
        bearer = {"Authorization": f"Bearer {token}"}
        me = http.get("/api/v1/users/me", headers=bearer).json()
        org_id = str(me.get("default_org_id") or "")
        api_key = ""
        if key:
            created = http.post("/api/v1/api-keys", json={"name": "bench"}, headers=bearer)
            if created.status_code != 201:
                raise SystemExit(f"api-keys answered {created.status_code}: {created.text[:300]}")
            api_key = str(created.json()["key"])
    return Account(email, password, token, api_key, org_id)


# --------------------------------------------------------------------------- the machine


def _run(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (done.stdout or done.stderr).strip()


def git_commit() -> str:
    commit = _run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = _run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"])
    return commit + ("+dirty" if commit and dirty else "")


def _ffmpeg_version() -> str:
    try:
        from mediakeep.processing.hls import ffmpeg_binary

        first = _run([ffmpeg_binary(), "-version"]).splitlines()
    except Exception:  # noqa: BLE001 - the description is best effort
        return ""
    return first[0].removeprefix("ffmpeg version ").split(" Copyright")[0] if first else ""


def _vips_version() -> str:
    try:
        import pyvips

        return f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}"
    except Exception:  # noqa: BLE001 - the description is best effort
        return ""


def machine(path: Path | None = None) -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    where = path or Path(tempfile.gettempdir())
    df = _run(["df", "-hT", str(where)]).splitlines()
    fields = df[-1].split() if len(df) > 1 else []
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 1024**3, 1),
        "filesystem": f"{fields[1]} ({fields[0]}, {fields[2]}) at {where}" if fields else "",
        "df": "\n".join(df),
        "kernel": platform.release(),
        "uname": " ".join(platform.uname()),
        "python": platform.python_version(),
        "ffmpeg": _ffmpeg_version(),
        "libvips": _vips_version(),
        "openssl": _run(["openssl", "version"]),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def describe(info: dict[str, Any]) -> str:
    return (
        f"{info['cores']} CPUs ({info['cpu'] or 'unknown CPU'}), {info['memory_gib']} GiB RAM, "
        f"{info['filesystem'] or 'unknown fs'}, Linux {info['kernel']}, Python {info['python']}, "
        f"ffmpeg {info['ffmpeg'] or '?'}, libvips {info['libvips'] or '?'}, "
        f"load average {' '.join(str(x) for x in info['load_average'])}"
    )


# --------------------------------------------------------------------------- output


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        " | ".join(f"{str(cell):>{width}}" for cell, width in zip(row, widths, strict=True))
        for row in [header, *rows]
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def document(benchmark: str, **fields: Any) -> dict[str, Any]:
    date = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return {"benchmark": benchmark, "date": date, "commit": git_commit()} | fields


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    print(f"wrote {shown}", flush=True)


_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
}


def goal(
    name: str,
    measured: float | None,
    op: str,
    target: float,
    unit: str = "",
    spread: tuple[float, float] | None = None,
) -> dict[str, Any]:
    if op not in _OPS:
        raise ValueError(f"op must be one of {', '.join(_OPS)}")
    met = measured is not None and _OPS[op](float(measured), float(target))
    value = None if measured is None else round(float(measured), 4)
    made = {"name": name, "measured": value, "op": op, "target": target, "unit": unit, "met": met}
    if spread is not None and measured is not None:
        made |= {"low": round(float(spread[0]), 4), "high": round(float(spread[1]), 4)}
    return made


def emit_result(benchmark: str, goals: list[dict[str, Any]], **extra: Any) -> None:
    line = {"benchmark": benchmark, "goals": goals} | extra
    print("RESULT " + json.dumps(line, ensure_ascii=False, default=str), flush=True)


def skip(benchmark: str, reason: str) -> NoReturn:
    print(f"SKIP: {reason}", flush=True)
    emit_result(benchmark, [], skipped=reason)
    raise SystemExit(0)
