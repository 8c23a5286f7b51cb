"""Scale-out: `escr ingest` with page OCR sent to 1, then 2, `escr worker` processes of one slot each.

The broker is a Redis database of its own and a queue named for this run, so nothing else
on the machine takes or sends pages. Workers are started in their own process groups and
stopped by those ids when the run ends.

With BENCH_CELERY_HOSTS=netns the intake and each worker are hosts of their own: each runs in a
network namespace whose one link (a veth pair) ends on a bridge in this machine's namespace,
10.77.0.0/24, where a Redis started for the run listens on the bridge's address and nowhere
else. Every byte between the intake, the broker and a worker then crosses an interface, and
is counted there (the veths' counters) and by Redis (INFO stats and commandstats): those per-page
figures are what docs/deployment.md's model for 10 and 100 workers is built on. Optionally
`tc qdisc netem` adds a LAN's latency on each link. The cores are still this machine's: the
namespaces separate the network, not the CPU.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.config import BenchConfig
from bench.corpus import Corpus
from bench.runners import clean_env, escr_ingest, tesseract_floor

DEFAULT_BROKER = "redis://127.0.0.1:6379/14"
SUBNET = "10.77.0"  # /24: the bridge (and the broker) on .1, the intake on .10, worker n on .20 + n
BROKER_ADDRESS = f"{SUBNET}.1"
IDLE_S = 3.0  # seconds the broker is watched with every worker waiting, before each run


def worker_available(config: BenchConfig) -> bool:
    done = subprocess.run([str(config.escr), "worker", "--help"], capture_output=True, text=True, check=False)
    return done.returncode == 0


def _wait_for_workers(logs: Sequence[Path], timeout_s: float = 90) -> bool:
    """Each worker says "ready." in its log once it consumes (escr turns Celery's remote control off)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(log.exists() and " ready." in log.read_text(errors="replace") for log in logs):
            return True
        time.sleep(0.5)
    return False


def _task_seconds(logs: Sequence[Path]) -> list[float]:
    """Each page task's own time, from the workers' "ocr page done ... seconds=" lines: with two
    workers a page takes longer than with one when they, or the sender, compete for the cores."""
    seconds = []
    for log in logs:
        for line in log.read_text(errors="replace").splitlines() if log.exists() else ():
            if "ocr page done" in line and "seconds=" in line:
                seconds.append(float(line.rsplit("seconds=", 1)[1].split()[0]))
    return seconds


def _stop(workers: Sequence[subprocess.Popen[bytes]]) -> None:
    for proc in workers:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in workers:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_with_workers(config: BenchConfig, corpus: Corpus, count: int, broker: str, queue: str,
                     hosts: NetnsHosts | None = None) -> dict[str, Any]:
    celery_env = {**config.celery_env, "ESCR_CELERY__BROKER_URL": broker, "ESCR_CELERY__QUEUE": queue}
    logs = config.work_dir / "run" / f"celery-{count}w"
    logs.mkdir(parents=True, exist_ok=True)
    names = [f"bench{os.getpid()}-{n}@localhost" for n in range(count)]
    env = clean_env({"ESCR_HOME": str(logs), **celery_env})
    workers = []
    log_files = [logs / f"{name.split('@')[0]}.log" for name in names]
    try:
        for n, (name, log_file) in enumerate(zip(names, log_files, strict=True)):
            wrap = hosts.wrap(hosts.workers[n]) if hosts else []
            with open(log_file, "wb") as log:
                workers.append(subprocess.Popen(
                    [*wrap, str(config.escr), "worker", "--concurrency", "1", "--hostname", name, "--loglevel", "INFO"],
                    env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        if not _wait_for_workers(log_files):
            return {"workers": count, "ok": False, "problem": f"workers did not start (logs in {logs})"}
        idle = hosts.idle(count, IDLE_S) if hosts else None
        before = hosts.snapshot() if hosts else None
        run = escr_ingest(config, [Path(f.path) for f in corpus.files], name=f"celery-{count}w-home",
                          children_csv=corpus.children_csv, pages=corpus.pages,
                          timeout_s=config.celery_timeout_s, extra_env=celery_env,
                          wrap=hosts.wrap(hosts.intake) if hosts else ())
        after = hosts.snapshot() if hosts and before else None
        task_s = _task_seconds(log_files)
        out: dict[str, Any] = {
            "workers": count, "slots_per_worker": 1, "pages": run.pages, "seconds": round(run.wall_s, 2),
            "pages_per_s": round(run.pages_per_s, 4), "ok": run.ok, "problem": run.problem,
            "sender_cpu_s": round(run.cpu_s, 2), "worker_task_s": round(sum(task_s), 2),
            "worker_task_s_per_page": round(sum(task_s) / len(task_s), 3) if task_s else None,
            "store_bytes_per_page": _store_bytes_per_page(run.detail.get("home"), run.pages)}
        if before and after:
            out["broker_traffic"] = {**per_page(before, after, run.pages), "idle": idle}
        return out
    finally:
        _stop(workers)


def _store_bytes_per_page(home: str | None, pages: int) -> int | None:
    """What the intake wrote to its object store (a folder in the benchmark's home) per page."""
    store = Path(home) / "store" if home else None
    if not store or not store.is_dir() or not pages:
        return None
    return round(sum(p.stat().st_size for p in store.rglob("*") if p.is_file()) / pages)


def measure_celery(config: BenchConfig, corpus: Corpus,
                   progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """1 worker, 2 workers, then tesseract alone as 1 and 2 processes, `config.rounds` times; the
    round with the median 2/1 ratio is the result (the machine drifts between runs: see
    `run_throughput`), and every round's ratios are kept. With BENCH_CELERY_HOSTS=netns the
    intake and the workers are hosts of their own (`NetnsHosts`), or, when they cannot be made,
    workers on this host as without it, the reason kept in the result."""
    if not worker_available(config):
        return {"available": False, "problem": "`escr worker` is not available yet (issue 5)"}
    queue = f"bench.ocr.{os.getpid()}"
    placement: dict[str, Any] = {"hosts": "local"}
    with _hosts(config, progress, placement) as hosts:
        broker = hosts.broker_url if hosts else config.celery_env.get("ESCR_CELERY__BROKER_URL", DEFAULT_BROKER)
        rounds: list[dict[str, Any]] = []
        for _ in range(config.rounds):
            runs = [run_with_workers(config, corpus, n, broker, queue, hosts) for n in (1, 2)]
            one, two = runs[0].get("pages_per_s") or 0, runs[1].get("pages_per_s") or 0
            rounds.append({"runs": runs, "ratio_2_over_1": round(two / one, 3) if one and two else None,
                           "tesseract_alone": tesseract_scaling(config, corpus)})
    measured = sorted((r for r in rounds if r["ratio_2_over_1"] is not None), key=lambda r: r["ratio_2_over_1"])
    median = measured[(len(measured) - 1) // 2] if measured else rounds[-1]  # the lower one of an even count
    return {"available": True, "broker": broker.rsplit("@", 1)[-1], "queue": queue, **placement, **median,
            "rounds": [{"ratio_2_over_1": r["ratio_2_over_1"],
                        "tesseract_alone_2_over_1": r["tesseract_alone"].get("ratio_2_over_1"),
                        "seconds": [run.get("seconds") for run in r["runs"]]} for r in rounds]}


@contextmanager
def _hosts(config: BenchConfig, progress: Callable[[str], None],
           placement: dict[str, Any]) -> Iterator[NetnsHosts | None]:
    """The intake and two workers as hosts of their own, if asked for and possible; taken down
    again however the section ends."""
    if config.celery_hosts != "netns":
        yield None
        return
    hosts = NetnsHosts(config, workers=2)
    try:
        hosts.start()
    except NetnsUnavailable as exc:
        progress(f"celery: BENCH_CELERY_HOSTS=netns: {exc}; the workers run on this host instead")
        placement.update(hosts_problem=f"network namespaces could not be made ({exc}): workers ran on this host")
        yield None
        return
    placement.update(hosts="netns", link=hosts.describe())
    progress(f"celery: intake and workers in network namespaces on {SUBNET}.0/24, "
             f"Redis {hosts.broker_url}; {hosts.describe()['latency']}")
    try:
        yield hosts
    finally:
        hosts.close()


def tesseract_scaling(config: BenchConfig, corpus: Corpus) -> dict[str, Any]:
    """What this machine's two cores give two tesseracts, measured beside the workers: the same
    page images through `tesseract` alone as 1 process, then 2. Two workers cannot scale better
    than this, less what the sender takes from them."""
    scratch = config.work_dir / "run" / "celery-floor"
    runs = {n: tesseract_floor(corpus.page_images, cores=n, scratch=scratch) for n in (1, 2)}
    out: dict[str, Any] = {f"{n}_process_s": round(r.wall_s, 2) for n, r in runs.items()}
    out["ok"] = all(r.ok for r in runs.values())
    out["ratio_2_over_1"] = round(runs[1].wall_s / runs[2].wall_s, 3) if out["ok"] and runs[2].wall_s else None
    return out


# --- hosts of their own: network namespaces ------------------------------------------------------


class NetnsUnavailable(RuntimeError):
    """The namespaces, links or broker could not be set up; whatever was made is taken down."""


@dataclass(frozen=True)
class Host:
    role: str  # "intake", "worker-1", ...
    netns: str
    link: str  # the veth's end in this machine's namespace, on the bridge
    address: str


def per_page(before: dict[str, Any], after: dict[str, Any], pages: int) -> dict[str, Any]:
    """Broker traffic over one run, per page: Redis's own counters, and each host's link.

    A host's link is counted at its end on the bridge, so what the host sent is that end's
    received bytes. Redis's commands include the workers' waiting for work (BRPOP) and the
    sender's polling for results, which is why the idle rate is kept beside them."""
    def diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        return {k: diff(a[k], v) if isinstance(v, dict) else v - a.get(k, 0) for k, v in b.items()
                if not isinstance(v, dict) or k in a}

    d = diff(before, after)
    pages = max(1, pages)
    own = d["commands"].pop("info", 0)  # the snapshots' own INFO calls (over this machine's side, not a link)
    links = d["links"]
    workers = [v for k, v in links.items() if k != "intake"]
    commands = sorted(((c, n / pages) for c, n in d["commands"].items() if n > 0), key=lambda x: -x[1])
    return {
        "pages": pages,
        "redis_commands_per_page": round((d["redis"]["total_commands_processed"] - own) / pages, 1),
        "redis_in_bytes_per_page": round(d["redis"]["total_net_input_bytes"] / pages),
        "redis_out_bytes_per_page": round(d["redis"]["total_net_output_bytes"] / pages),
        "redis_connections": d["redis"]["total_connections_received"],
        "commands_per_page": {c: round(n, 2) for c, n in commands},
        "intake_sent_bytes_per_page": round(links["intake"]["rx_bytes"] / pages),
        "intake_received_bytes_per_page": round(links["intake"]["tx_bytes"] / pages),
        "workers_sent_bytes_per_page": round(sum(w["rx_bytes"] for w in workers) / pages),
        "workers_received_bytes_per_page": round(sum(w["tx_bytes"] for w in workers) / pages),
        # veths merge TCP segments (offloads): these are not the packets a real network carries
        "veth_packets_per_page": round(sum(v["rx_packets"] + v["tx_packets"] for v in links.values()) / pages, 1),
    }


class NetnsHosts:
    """The intake and `workers` workers, each in a network namespace with one veth into a bridge
    on 10.77.0.0/24, and a Redis of its own on the bridge's address (a free port): broker traffic
    crosses a link, as between machines. Names carry this process's id; `start` first takes down
    what an earlier run that was killed left behind, `close` takes down everything it made."""

    def __init__(self, config: BenchConfig, workers: int) -> None:
        self.pid = os.getpid()
        self.delay_ms = config.celery_delay_ms
        self.scratch = config.work_dir / "run" / f"netns-{self.pid}"
        self.runs_dir = config.work_dir / "run"
        self.bridge = f"eb{self.pid}br"
        self.intake = Host("intake", f"escrb{self.pid}-intake", f"eb{self.pid}h0", f"{SUBNET}.10")
        self.workers = [Host(f"worker-{n + 1}", f"escrb{self.pid}-w{n + 1}", f"eb{self.pid}h{n + 1}",
                             f"{SUBNET}.{20 + n + 1}") for n in range(workers)]
        self.port = 0
        self.redis: subprocess.Popen[bytes] | None = None
        self.latency = "none added"
        self._made_bridge = False
        self._made: list[Host] = []
        self._ip = shutil.which("ip") or "ip"
        self._old_sigterm: Any = None

    @property
    def hosts(self) -> list[Host]:
        return [self.intake, *self.workers]

    @property
    def broker_url(self) -> str:
        return f"redis://{BROKER_ADDRESS}:{self.port}/0"

    def wrap(self, host: Host) -> list[str]:
        return [self._ip, "netns", "exec", host.netns]

    def describe(self) -> dict[str, Any]:
        return {"subnet": f"{SUBNET}.0/24", "broker": f"{BROKER_ADDRESS}:{self.port}",
                "hosts": {h.role: h.address for h in self.hosts}, "latency": self.latency}

    # -- setting up and taking down

    def start(self) -> None:
        if os.geteuid() != 0:
            raise NetnsUnavailable("needs root to make network namespaces")
        for tool in ("ip", "tc", "redis-server"):
            if not shutil.which(tool):
                raise NetnsUnavailable(f"`{tool}` is not installed (iproute2, redis-server)")
        sweep_stale(self.runs_dir, self._ip)
        taken = self._run(["-4", "-o", "addr"]).stdout + self._run(["-4", "route"]).stdout
        if f" {SUBNET}." in taken:
            raise NetnsUnavailable(f"{SUBNET}.0/24 is already in use on this machine")
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:  # a killed run still takes it all down
            self._old_sigterm = signal.signal(signal.SIGTERM, _exit_on_sigterm)
        try:
            self._make()
        except BaseException:
            self.close()
            raise

    def _make(self) -> None:
        self._run(["link", "add", self.bridge, "type", "bridge"])
        self._made_bridge = True
        self._run(["addr", "add", f"{BROKER_ADDRESS}/24", "dev", self.bridge])
        self._run(["link", "set", self.bridge, "up"])
        for host in self.hosts:
            self._run(["netns", "add", host.netns])
            self._made.append(host)
            self._run(["link", "add", host.link, "type", "veth", "peer", "name", "eth0", "netns", host.netns])
            self._run(["link", "set", host.link, "master", self.bridge, "up"])
            self._run(["-n", host.netns, "addr", "add", f"{host.address}/24", "dev", "eth0"])
            self._run(["-n", host.netns, "link", "set", "eth0", "up"])
            self._run(["-n", host.netns, "link", "set", "lo", "up"])
        if self.delay_ms > 0:
            self._add_latency()
        self.scratch.mkdir(parents=True, exist_ok=True)
        with socket.socket() as probe:
            probe.bind((BROKER_ADDRESS, 0))
            self.port = probe.getsockname()[1]
        log = open(self.scratch / "redis.log", "wb")  # noqa: SIM115 (kept open for the server's life)
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", BROKER_ADDRESS, "--protected-mode", "no",
             "--save", "", "--appendonly", "no", "--dir", str(self.scratch)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        (self.scratch / "redis.pid").write_text(str(self.redis.pid))
        self._wait_for_broker()

    def _add_latency(self) -> None:
        """Half the round trip on each direction of each link: netem on both ends of the veth."""
        half = f"{self.delay_ms / 2:g}ms"
        try:
            for host in self.hosts:
                self._run(["tc", "qdisc", "add", "dev", host.link, "root", "netem", "delay", half], tool="tc")
                self._run(["tc", "-n", host.netns, "qdisc", "add", "dev", "eth0", "root", "netem", "delay", half],
                          tool="tc")
            self.latency = f"{self.delay_ms:g} ms round trip added on each link (tc netem)"
        except NetnsUnavailable as exc:
            self.latency = f"no latency added: tc netem is not available here ({str(exc).split('failed: ')[-1]})"

    def _wait_for_broker(self, timeout_s: float = 15) -> None:
        """Redis answers on the bridge, and from inside a namespace (the path the workers take)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.redis is not None and self.redis.poll() is not None:
                break
            probe = subprocess.run(
                [*self.wrap(self.intake), "redis-cli", "-h", BROKER_ADDRESS, "-p", str(self.port), "ping"],
                capture_output=True, text=True, check=False)
            if probe.stdout.strip() == "PONG":
                return
            time.sleep(0.3)
        raise NetnsUnavailable(f"the run's Redis did not answer on {BROKER_ADDRESS}:{self.port} from a namespace "
                               f"(log: {self.scratch / 'redis.log'})")

    def close(self) -> None:
        """Everything `start` made, in reverse; never raises (a run's result is kept regardless)."""
        if self.redis is not None and self.redis.poll() is None:
            os.killpg(self.redis.pid, signal.SIGTERM)
            try:
                self.redis.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.redis.pid, signal.SIGKILL)
                self.redis.wait()
        (self.scratch / "redis.pid").unlink(missing_ok=True)
        for host in reversed(self._made):  # deleting a namespace deletes its veth pair
            self._run(["netns", "delete", host.netns], check=False)
            self._run(["link", "delete", host.link], check=False)
        self._made.clear()
        if self._made_bridge:
            self._run(["link", "delete", self.bridge], check=False)
            self._made_bridge = False
        if self._old_sigterm is not None:
            signal.signal(signal.SIGTERM, self._old_sigterm)
            self._old_sigterm = None

    def _run(self, args: list[str], *, tool: str = "ip", check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = args if tool == "tc" else [self._ip, *args]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if check and done.returncode != 0:
            raise NetnsUnavailable(f"`{' '.join(cmd)}` failed: {done.stderr.strip()[-200:]}")
        return done

    # -- counting

    def snapshot(self) -> dict[str, Any]:
        """Redis's counters and each host link's bytes and packets, now."""
        import redis  # escr's own dependency (the Celery broker client)

        client = redis.Redis(host=BROKER_ADDRESS, port=self.port, socket_timeout=10)
        try:
            stats = client.info("stats")
            commands = client.info("commandstats")
        finally:
            client.close()
        links = {}
        for host in self.hosts:
            shown = json.loads(self._run(["-s", "-j", "link", "show", "dev", host.link]).stdout)[0]["stats64"]
            links[host.role] = {"rx_bytes": shown["rx"]["bytes"], "tx_bytes": shown["tx"]["bytes"],
                                "rx_packets": shown["rx"]["packets"], "tx_packets": shown["tx"]["packets"]}
        return {"redis": {k: int(stats[k]) for k in ("total_commands_processed", "total_net_input_bytes",
                                                      "total_net_output_bytes", "total_connections_received")},
                "commands": {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in commands.items()},
                "links": links, "at": time.monotonic()}

    def idle(self, workers: int, seconds: float) -> dict[str, Any]:
        """What `workers` waiting workers cost the broker with nothing to do: a second's commands
        and bytes per worker (the part of a page's commands that is waiting, not work)."""
        before = self.snapshot()
        time.sleep(seconds)
        after = self.snapshot()
        span = max(1e-6, after["at"] - before["at"]) * max(1, workers)
        links = [after["links"][h.role]["rx_bytes"] + after["links"][h.role]["tx_bytes"]
                 - before["links"][h.role]["rx_bytes"] - before["links"][h.role]["tx_bytes"] for h in self.workers]
        return {"seconds": round(seconds, 1),
                "commands_per_worker_s": round((after["redis"]["total_commands_processed"]
                                                - before["redis"]["total_commands_processed"]) / span, 2),
                "link_bytes_per_worker_s": round(sum(links) / span)}


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def sweep_stale(runs_dir: Path, ip: str = "ip") -> list[str]:
    """Namespaces, links and Redis servers left by a benchmark run that was killed before it could
    take them down: names carry the run's process id, and only those whose process is gone go."""
    def gone(pid: str) -> bool:
        return not Path(f"/proc/{pid}").exists()

    swept = []
    listed = subprocess.run([ip, "netns", "list"], capture_output=True, text=True, check=False).stdout
    for name in re.findall(r"^(escrb(\d+)-\S+)", listed, flags=re.M):
        if gone(name[1]):
            subprocess.run([ip, "netns", "delete", name[0]], capture_output=True, check=False)
            swept.append(name[0])
    links = subprocess.run([ip, "-o", "link", "show"], capture_output=True, text=True, check=False).stdout
    for name in re.findall(r"^\d+: (eb(\d+)(?:br|h\d+))[@:]", links, flags=re.M):
        if gone(name[1]):
            subprocess.run([ip, "link", "delete", name[0]], capture_output=True, check=False)
            swept.append(name[0])
    for pidfile in runs_dir.glob("netns-*/redis.pid"):
        if gone(pidfile.parent.name.removeprefix("netns-")):
            server = pidfile.read_text().strip()
            cmdline = Path(f"/proc/{server}/cmdline")
            if server.isdigit() and cmdline.exists() and b"redis-server" in cmdline.read_bytes():
                os.kill(int(server), signal.SIGTERM)
                swept.append(f"redis-server {server}")
            pidfile.unlink(missing_ok=True)
    return swept
