#!/usr/bin/env python3
"""CURVE through a forwarder: this project's forwarder (demitter-forwarder with
--curve-secret and --curve-allow) against libzmq's own zmq_proxy with CURVE, with the same
libzmq (pyzmq) PUB and SUB clients, 64 B Demitter-format messages, flat out.

Each proxy runs in its own process; the clients run here. For each run it prints the
messages delivered per second and the proxy process's CPU time per million messages
(from /proc), the two proxies alternating; then the medians.

    python3 benches/curve_proxy.py target/release/demitter-forwarder [--messages N] [--runs R]

Needs python3 with pyzmq (libzmq with CURVE).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import zmq

LIBZMQ_PROXY = r"""
import sys, zmq
secret = sys.argv[1].encode()
ctx = zmq.Context()
sockets = []
for kind in (zmq.XSUB, zmq.XPUB):
    s = ctx.socket(kind)
    s.curve_server = True
    s.curve_secretkey = secret
    s.sndhwm = s.rcvhwm = 100000
    sockets.append(s)
ports = [s.bind_to_random_port("tcp://127.0.0.1") for s in sockets]
print(*ports, flush=True)
zmq.proxy(*sockets)
"""


def cpu_seconds(pid):
    """User and system CPU seconds of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf(os.sysconf_names["SC_CLK_TCK"])
    return (int(fields[11]) + int(fields[12])) / ticks


def start_ours(binary, server_secret, client_public, workdir):
    secret_file = os.path.join(workdir, "forwarder.key")
    allow_file = os.path.join(workdir, "allow")
    with open(secret_file, "w") as f:
        f.write(server_secret.decode() + "\n")
    os.chmod(secret_file, 0o600)
    with open(allow_file, "w") as f:
        f.write(f"bench {client_public.decode()}\n")
    proc = subprocess.Popen(
        [binary, "--xsub-port", "0", "--xpub-port", "0", "--stats-every", "0",
         "--subscriber-queue", "100000",
         "--curve-secret", secret_file, "--curve-allow", allow_file],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "LOG_LEVEL": "error"},
    )
    line = proc.stdout.readline()
    ports = [w.rsplit(":", 1)[1].rstrip(",") for w in line.split() if w.startswith("tcp://")]
    return proc, ports[0], ports[1]


def start_libzmq(server_secret):
    proc = subprocess.Popen(
        [sys.executable, "-c", LIBZMQ_PROXY, server_secret.decode()],
        stdout=subprocess.PIPE, text=True,
    )
    xsub, xpub = proc.stdout.readline().split()
    return proc, xsub, xpub


def run_load(xsub, xpub, server_public, client_public, client_secret, messages):
    """Publishes `messages` flat out once a probe has crossed; returns (delivered, seconds)."""
    ctx = zmq.Context()

    def curve(kind):
        s = ctx.socket(kind)
        s.curve_serverkey = server_public
        s.curve_publickey = client_public
        s.curve_secretkey = client_secret
        s.sndhwm = s.rcvhwm = 100000
        return s

    sub = curve(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"s:")
    sub.connect(f"tcp://127.0.0.1:{xpub}")
    pub = curve(zmq.PUB)
    pub.connect(f"tcp://127.0.0.1:{xsub}")
    payload = b"\xc4\x3e" + b"x" * 62  # 64 B of MessagePack bin
    deadline = time.time() + 10
    while time.time() < deadline:  # the subscription travels: probe until one crosses
        pub.send_multipart([b"s:probe", b"bench", payload])
        if sub.poll(10):
            sub.recv_multipart()
            break
    else:
        raise SystemExit("no probe crossed the proxy")
    while sub.poll(50):  # the probes still on their way
        sub.recv_multipart()
    received = 0
    first = last = None
    sent = 0
    while sent < messages or sub.poll(200):
        while sent < messages and not sub.poll(0):
            pub.send_multipart([b"s:bench", b"bench", payload])
            sent += 1
        while sub.poll(0):
            sub.recv_multipart()
            now = time.perf_counter()
            first = first or now
            last = now
            received += 1
    ctx.destroy(linger=0)
    return received, (last - first) if first and last and last > first else 0.0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("forwarder")
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    server_public, server_secret = zmq.curve_keypair()
    client_public, client_secret = zmq.curve_keypair()
    results = {"ours": [], "libzmq": []}
    with tempfile.TemporaryDirectory() as workdir:
        for run in range(args.runs):
            for which in ("ours", "libzmq"):
                if which == "ours":
                    proc, xsub, xpub = start_ours(args.forwarder, server_secret, client_public, workdir)
                else:
                    proc, xsub, xpub = start_libzmq(server_secret)
                try:
                    cpu_before = cpu_seconds(proc.pid)
                    delivered, secs = run_load(xsub, xpub, server_public, client_public,
                                               client_secret, args.messages)
                    cpu = cpu_seconds(proc.pid) - cpu_before
                finally:
                    proc.kill()
                    proc.wait()
                rate = delivered / secs if secs else 0.0
                per_million = cpu / delivered * 1e6 if delivered else float("nan")
                results[which].append((rate, per_million, delivered))
                print(f"run {run + 1} {which:6}: {rate:10,.0f} msg/s delivered "
                      f"({delivered:,} of {args.messages:,}), proxy CPU {per_million:.2f} s per million",
                      flush=True)
    med = {k: (statistics.median(r for r, _, _ in v), statistics.median(c for _, c, _ in v))
           for k, v in results.items()}
    print(f"median: ours {med['ours'][0]:,.0f} msg/s, {med['ours'][1]:.2f} CPU s/M; "
          f"libzmq {med['libzmq'][0]:,.0f} msg/s, {med['libzmq'][1]:.2f} CPU s/M; "
          f"ours/libzmq rate {med['ours'][0] / med['libzmq'][0]:.2f}x, "
          f"CPU per message {med['ours'][1] / med['libzmq'][1]:.2f}x")


if __name__ == "__main__":
    main()
