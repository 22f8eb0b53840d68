"""Ingestion benchmark: detection overhead, a 10,000-file burst, cold-start reconciliation.

Needs Redis and RabbitMQ at the default URLs (as `make test` leaves them) and ffmpeg.
Run:  .venv/bin/python bench/ingest.py [--files 500] [--burst 10000] [--tree 100000]

Figures (goals from issue 3):
- detection overhead, inotify: confirmed publish − last close − settle_seconds − the
  file's own normalization time, p50 and p99 (goal p99 < 250 ms);
- burst: time to ledger N files, files/s, and the daemon's peak RSS (goal < 150 MB);
- cold start over a tree of already-done files: time until the reconciliation walk is
  over (goal < 10 s), and its ratio to a bare os.walk + stat of the same tree (the floor).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import moving_square_clip, wait_for
from tests.integration.test_ingestion import distinct_ts_clips
from vidwatch.config import load_config
from vidwatch.daemon import Daemon
from vidwatch.results.keys import Keys

REDIS_URL = "redis://127.0.0.1:6379/0"
SETTLE_S = 0.5


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


class Site:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.inbox = work / "inbox"
        self.inbox.mkdir(parents=True)
        self.prefix = f"vwbench-{uuid.uuid4().hex[:8]}"
        self.vhost = self.prefix
        rabbitmqctl("add_vhost", self.vhost)
        rabbitmqctl("set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")
        self.config_path = work / "vidwatch.toml"
        self.config_path.write_text(
            f'[watch]\nroots = ["{self.inbox}"]\nsettle_seconds = {SETTLE_S}\nrescan_seconds = 3600\nmode = "inotify"\n'
            f'[paths]\nstate_dir = "{work / "var"}"\n'
            f'[broker]\nurl = "amqp://guest:guest@127.0.0.1:5672/{self.vhost}"\n'
            f'[redis]\nurl = "{REDIS_URL}"\nprefix = "{self.prefix}"\n'
            f'[api]\nlisten = "127.0.0.1:0"\n'
        )
        self.config = load_config(self.config_path, environ={})
        self.keys = Keys(self.prefix)
        self.client = redis.Redis.from_url(REDIS_URL, decode_responses=True)

    def close(self) -> None:
        keys = list(self.client.scan_iter(match=f"{self.prefix}:*", count=5000))
        for start in range(0, len(keys), 5000):
            self.client.delete(*keys[start : start + 5000])
        rabbitmqctl("delete_vhost", self.vhost)
        shutil.rmtree(self.work, ignore_errors=True)


def detection_overhead(template: Path, files: int, interval_s: float) -> None:
    site = Site(Path(tempfile.mkdtemp(prefix="vwbench-")))
    daemon = Daemon(site.config)
    daemon.start()
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    try:
        staged = distinct_ts_clips(template, site.work / "staging", files)
        closed: dict[str, float] = {}
        for index, path in enumerate(staged):
            target = site.inbox / f"{index:05d}.ts"
            with open(target, "wb") as handle:
                handle.write(path.read_bytes())
            closed[str(target)] = time.time()
            time.sleep(interval_s)  # a steady stream of recordings below capacity: paced writer
        def all_published() -> bool:
            states = [site.client.hget(key, "published") for key in site.client.scan_iter(
                match=site.keys.video("*"), count=1000)]
            return len(states) == files and set(states) == {"1"}

        wait_for(lambda: daemon.idle() and all_published(), timeout_s=600, what="every file to be published",
                 interval_s=0.5)
        overheads = []
        for video_key in site.client.scan_iter(match=site.keys.video("*"), count=1000):
            record = site.client.hgetall(video_key)
            published = float(record["published_at"])
            overheads.append(published - closed[record["path"]] - SETTLE_S - float(record.get("normalize_s", 0)))
    finally:
        daemon.stop_event.set()
        thread.join(timeout=10)
        daemon.stop()
        site.close()
    overheads.sort()
    p50 = statistics.median(overheads)
    p99 = overheads[min(len(overheads) - 1, int(len(overheads) * 0.99))]
    print(f"detection overhead over {len(overheads)} files, one every {interval_s} s "
          f"(settle {SETTLE_S} s, probe + normalization excluded):")
    print(f"  p50 {p50 * 1000:.0f} ms   p99 {p99 * 1000:.0f} ms   goal p99 < 250 ms -> ratio to goal {p99 / 0.25:.2f}")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def burst(template: Path, files: int) -> None:
    site = Site(Path(tempfile.mkdtemp(prefix="vwbench-")))
    vidwatch = str(Path(sys.executable).with_name("vidwatch"))
    staged = distinct_ts_clips(template, site.work / "staging", files)
    with open(site.work / "daemon.log", "wb") as log:
        proc = subprocess.Popen([vidwatch, "daemon", "-c", str(site.config_path)], stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: any(site.client.scan_iter(match=site.keys.daemon("*"))), timeout_s=60, what="the daemon")
        started = time.monotonic()
        for index, path in enumerate(staged):
            path.rename(site.inbox / f"{index:05d}.ts")
        moved = time.monotonic() - started
        wait_for(lambda: site.client.hlen(site.keys.paths) >= files, timeout_s=900, what="every file ledgered",
                 interval_s=0.2)
        ledgered = time.monotonic() - started
        rss = peak_rss_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        site.close()
    print(f"burst of {files} files (renamed into place in {moved:.1f} s):")
    print(f"  all ledgered in {ledgered:.1f} s ({files / ledgered:.0f} files/s); daemon peak RSS {rss:.0f} MB"
          f"   goal < 150 MB -> ratio to goal {rss / 150:.2f}")


def cold_start(tree: int) -> None:
    site = Site(Path(tempfile.mkdtemp(prefix="vwbench-")))
    try:
        per_folder = 500
        pipe = site.client.pipeline(transaction=False)
        for index in range(tree):
            folder = site.inbox / f"cam{index // 25000}" / f"day{(index // per_folder) % 50:02d}"
            if index % per_folder == 0:
                folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{index:06d}.mp4"
            path.write_bytes(b"\0")
            st = path.stat()
            pipe.hset(site.keys.paths, str(path), f"{st.st_size}:{st.st_mtime_ns}:done{index}")
            if index % 5000 == 4999:
                pipe.execute()
        pipe.execute()
        os.sync()

        started = time.monotonic()
        count = 0
        for dirpath, _, filenames in os.walk(site.inbox):
            for name in filenames:
                os.stat(os.path.join(dirpath, name))
                count += 1
        floor = time.monotonic() - started

        daemon = Daemon(site.config)
        started = time.monotonic()
        daemon.start()
        thread = threading.Thread(target=daemon.run, daemon=True)
        thread.start()
        wait_for(daemon.idle, timeout_s=300, what="the reconciliation walk", interval_s=0.05)
        reconcile = time.monotonic() - started
        queued = site.client.xlen(site.keys.events)
        daemon.stop_event.set()
        thread.join(timeout=10)
        daemon.stop()
    finally:
        site.close()
    print(f"cold start over {count} already-done files:")
    print(f"  reconciled in {reconcile:.2f} s (goal < 10 s); bare os.walk+stat {floor:.2f} s -> ratio "
          f"{reconcile / floor:.2f}; files re-queued: {queued}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between files in the overhead run")
    parser.add_argument("--burst", type=int, default=10_000)
    parser.add_argument("--tree", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        template = moving_square_clip(Path(tmp) / "tiny.ts", seconds=1, size="64x48", fmt="mpegts")
        if args.tree:
            cold_start(args.tree)
        if args.files:
            detection_overhead(template, args.files, args.interval)
        if args.burst:
            burst(template, args.burst)


if __name__ == "__main__":
    main()
