"""How many mostly-sleeping pollers one Locust process drives on one core.

    python tests/bench/crowd_capacity.py [--users 10000] [--intervals 10,5,2] [--seconds 20]

A private nginx answers a static status JSON (so the server costs next to nothing);
for each interval one Locust process (`FastHttpUser`, one connection per user, as
`fairdrop rehearse`'s crowd) starts the users, lets them settle, then measures the
requests per second achieved against the target (users ÷ interval), its own CPU, and
how late polls were sent against their schedule. Progress on stderr; the last stdout
line is a JSON list, one object per interval. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_NGINX = """\
worker_processes 1; daemon off; pid {d}/nginx.pid; error_log {d}/error.log;
worker_rlimit_nofile 65536; events {{ worker_connections 40000; }}
http {{ access_log off; keepalive_requests 1000000; keepalive_timeout 300s;
  client_body_temp_path {d}/b; proxy_temp_path {d}/p; fastcgi_temp_path {d}/f;
  uwsgi_temp_path {d}/u; scgi_temp_path {d}/s;
  server {{ listen 127.0.0.1:{port}; location / {{ default_type application/json;
    return 200 '{{"status":{{"state":"waiting","next_poll_seconds":5}}}}'; }} }} }}
"""

_PROBE = """\
import json, random, resource, sys, time
import gevent, psutil
from locust import FastHttpUser, constant, task
from locust.env import Environment
users, interval, seconds, host = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
late, sent = [], [0]
class Poller(FastHttpUser):
    host = host
    wait_time = constant(0)
    concurrency = 1
    def on_start(self):
        self.due = time.time() + random.uniform(0, interval)
    @task
    def poll(self):
        delay = self.due - time.time()
        if delay > 0:
            gevent.sleep(delay)
        else:
            late.append(-delay)
        with self.client.get("/api/launches/x/queue/status", catch_response=True) as r:
            r.success()
        sent[0] += 1
        self.due += interval
env = Environment(user_classes=[Poller])
runner = env.create_local_runner()
runner.start(users, spawn_rate=2000)
while runner.user_count < users:
    gevent.sleep(0.5)
gevent.sleep(2 * interval)
me = psutil.Process()
late.clear(); n0 = sent[0]; c0 = sum(me.cpu_times()[:2]); t0 = time.time()
gevent.sleep(seconds)
n1 = sent[0]; c1 = sum(me.cpu_times()[:2]); t1 = time.time()
late.sort()
print(json.dumps({
    "users": users, "interval_s": interval, "target_per_s": round(users / interval),
    "achieved_per_s": round((n1 - n0) / (t1 - t0)), "cpu_cores": round((c1 - c0) / (t1 - t0), 3),
    "late_polls": len(late), "late_p50_s": round(late[len(late) // 2], 2) if late else 0.0,
    "rss_mb": round(me.memory_info().rss / 2**20),
}))
runner.quit()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--intervals", default="10,5,2")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    results = []
    with tempfile.TemporaryDirectory(prefix="fd-crowd-") as work:
        Path(work).chmod(0o755)
        conf = Path(work) / "nginx.conf"
        conf.write_text(_NGINX.format(d=work, port=port))
        nginx = subprocess.Popen(["/usr/sbin/nginx", "-p", work, "-c", str(conf)])
        try:
            time.sleep(1.0)  # nginx binds at once; the probe retries connections anyway
            for interval in (float(x) for x in args.intervals.split(",")):
                print(f"[crowd] {args.users} users every {interval:g} s…", file=sys.stderr)
                done = subprocess.run(
                    [
                        sys.executable,
                        "-c",
                        _PROBE,
                        str(args.users),
                        str(interval),
                        str(args.seconds),
                        f"http://127.0.0.1:{port}",
                    ],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if done.returncode != 0:
                    raise SystemExit(f"the probe failed:\n{done.stderr[-3000:]}")
                results.append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(f"[crowd] {results[-1]}", file=sys.stderr)
        finally:
            nginx.terminate()
            nginx.wait()
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
