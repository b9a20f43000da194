"""End-to-end bus latency through the proxy (loopback), publisher -> proxy -> subscriber.

    python bench/bus_latency.py [--json] [--count N] [--rate HZ] [--no-echo] [--raw] [--no-check]

Starts three Python subprocesses: the proxy (``python -m messaging.proxy``), a
subscriber that echoes every message back as an ``event``, and a publisher that sends
``--count`` deltas (one position each, ~430 bytes, what a master sends per change) at
``--rate`` Hz and receives the echoes.

Two figures, both application-level (encode + validate + send ... receive + decode +
validate), none of which includes process start or the slow-joiner warm-up:
  * one-way: ``time.time_ns()`` taken in the publisher just before ``publish`` and in
    the subscriber just after ``recv`` returns. Valid because both processes read the
    same machine's wall clock; its resolution is ~1 us on Linux and Windows 8+.
  * RTT/2: half the round trip measured with ``time.perf_counter_ns()`` in the
    publisher alone (one clock, no cross-process assumption). The echo leg is an
    ``event`` sent without the sender check, so the two legs are not identical:
    RTT/2 is a cross-check of one-way, not a bound on it.
Goal: one-way p99 <= 0.3 ms.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from copier.models import Position  # noqa: E402
from messaging.codec import decode, encode  # noqa: E402
from messaging.publisher import Publisher  # noqa: E402
from messaging.schema import Control, Delta, Event  # noqa: E402
from messaging.subscriber import Subscriber  # noqa: E402

MASTER = "bench-master"
ECHO = "bench-sub"


def sample_delta(seq: int, epoch: str = "run") -> Delta:
    now = time.time_ns() // 1_000_000
    pos = Position(ticket=123456789, identifier=123456789, symbol="EURUSD.raw", side="BUY",
                   volume=1.25, price_open=1.08517, sl=1.08017, tp=1.09517, time_msc=now,
                   time_update_msc=now, magic=20240101, comment="copyhub bench",
                   price_current=1.08522, profit=6.25)
    return Delta(master=MASTER, epoch=epoch, seq=seq, ts_ms=now, upsert_positions=(pos,))


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    xs = sorted(samples_ns)
    if not xs:
        return {"n": 0}

    def pct(q: float) -> float:
        return xs[min(len(xs) - 1, max(0, int(q * len(xs) + 0.999999) - 1))] / 1000.0

    return {"n": len(xs), "p50_us": pct(0.50), "p99_us": pct(0.99), "p999_us": pct(0.999),
            "max_us": xs[-1] / 1000.0, "mean_us": sum(xs) / len(xs) / 1000.0}


# ------------------------------------------------------------------ child: subscriber

def _raw_recv(sub: Subscriber, timeout_ms: int):
    """Transport floor: frames off the socket, no validation; seq/epoch found by search."""
    if not sub.socket.poll(timeout_ms):
        return None
    topic, payload = sub.socket.recv_multipart()
    if topic.startswith(b"ctl."):
        return decode([topic, payload])
    i = payload.index(b'"seq":') + 6
    seq = int(payload[i:payload.index(b",", i)])
    epoch = "run" if b'"epoch":"run"' in payload else "warmup"
    return Delta(master=MASTER, epoch=epoch, seq=seq, ts_ms=0)


def run_sub(xsub: str, xpub: str, echo: bool, raw: bool) -> None:
    """Echo bench deltas; on ``ctl stop`` print the receive times as JSON.

    Warm-up deltas are always echoed (they prove the path is up); measured ones only
    with ``echo`` (needed for RTT, but it doubles the traffic the one-way figure shares
    the CPUs with).
    """
    sub = Subscriber(xpub, [f"pos.{MASTER}", f"ctl.{ECHO}"])
    pub = Publisher(xsub, check=False)  # echoes are ours; keep the echo path cheap
    recv_ns: dict[int, int] = {}
    print("READY", flush=True)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        msg = _raw_recv(sub, 1000) if raw else sub.recv(1000)
        if msg is None:
            continue
        t = time.time_ns()
        if isinstance(msg, Control) and msg.command == "stop":
            break
        if isinstance(msg, Delta):
            if msg.epoch == "run":
                recv_ns[msg.seq] = t
            if echo or msg.epoch != "run":
                pub.publish(Event(node=ECHO, ts_ms=msg.ts_ms, event="echo",
                                  data={"seq": msg.seq, "epoch": msg.epoch}))
    print(json.dumps({"recv_ns": recv_ns, "dropped": sub.dropped}), flush=True)
    pub.close()
    sub.close()


# ------------------------------------------------------------------- child: publisher

def run_pub(xsub: str, xpub: str, count: int, rate: float, echo: bool, raw: bool,
            check: bool = True) -> None:
    pub = Publisher(xsub, check=check)  # default check=True: what nodes run with
    frames = {seq: encode(sample_delta(seq)) for seq in range(1, count + 1)} if raw else {}
    echoes = Subscriber(xpub, [f"event.{ECHO}"])
    start_pc: dict[int, int] = {}
    send_ns: dict[int, int] = {}
    rtt_ns: dict[int, int] = {}

    def take_echoes(timeout_ms: int) -> bool:
        msg = echoes.recv(timeout_ms)
        got = False
        while msg is not None:
            t = time.perf_counter_ns()
            if isinstance(msg, Event) and msg.data.get("epoch") == "run":
                seq = msg.data["seq"]
                if seq in start_pc:
                    rtt_ns[seq] = t - start_pc[seq]
            got = True
            msg = echoes.recv(0)
        return got

    # Slow joiner: send warm-up deltas until the first echo proves the path is up.
    deadline = time.monotonic() + 20
    while not take_echoes(20):
        if time.monotonic() > deadline:
            raise SystemExit("bench: no echo from the subscriber")
        pub.publish(sample_delta(0, "warmup"))
    for i in range(200):  # warm caches and allocators on every hop
        pub.publish(sample_delta(i, "warmup"))
        take_echoes(1)

    period = 1.0 / rate
    next_t = time.perf_counter()
    for seq in range(1, count + 1):
        while True:
            wait = next_t - time.perf_counter()
            if wait <= 0:
                break
            # Wait on the echo socket, never in time.sleep: an echo must be timed
            # when it lands. zmq polls in whole ms, so a send may slip by < 1 ms.
            take_echoes(max(1, int(wait * 1000 + 0.999)))
        msg = sample_delta(seq)
        start_pc[seq] = time.perf_counter_ns()
        send_ns[seq] = time.time_ns()
        if raw:  # pre-encoded: transport only
            pub.socket.send_multipart(frames[seq])
        else:
            pub.publish(msg)
        next_t += period
    end = time.monotonic() + 2
    while echo and len(rtt_ns) < count and time.monotonic() < end:
        take_echoes(50)
    stop = Control(target=ECHO, command="stop", sender="bench", ts_ms=0)
    for _ in range(5):
        pub.publish(stop)
    print(json.dumps({"send_ns": send_ns, "rtt_ns": rtt_ns}), flush=True)
    pub.close()
    echoes.close()


# ------------------------------------------------------------------------ driver

def codec_costs() -> dict[str, float]:
    d = sample_delta(1)
    frames = encode(d)
    n = 20000
    return {
        "payload_bytes": len(frames[1]),
        "encode_us": timeit.timeit(lambda: encode(d), number=n) / n * 1e6,
        "encode_checked_us": timeit.timeit(lambda: encode(d, check=True), number=n) / n * 1e6,
        "decode_us": timeit.timeit(lambda: decode(frames), number=n) / n * 1e6,
    }


def spawn(args: list[str]) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, text=True)


def stop_proxy(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.CTRL_BREAK_EVENT if os.name == "nt" else signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def drive(count: int, rate: float, echo: bool = True, raw: bool = False,
          check: bool = True) -> dict:
    proxy = subprocess.Popen(
        [sys.executable, "-m", "messaging.proxy", "--xsub", "tcp://127.0.0.1:*",
         "--xpub", "tcp://127.0.0.1:*", "--parent-pid", str(os.getpid())],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        creationflags=getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0))
    try:
        ready = proxy.stdout.readline().split()
        if not ready or ready[0] != "READY":
            raise SystemExit("bench: proxy did not start")
        eps = dict(p.split("=", 1) for p in ready[1:])
        me = str(Path(__file__).resolve())
        flags = (["--no-echo"] if not echo else []) + (["--raw"] if raw else []) + \
            (["--no-check"] if not check else [])
        sub = spawn([me, "--role", "sub", "--xsub", eps["xsub"], "--xpub", eps["xpub"], *flags])
        if sub.stdout.readline().strip() != "READY":
            raise SystemExit("bench: subscriber did not start")
        pub = spawn([me, "--role", "pub", "--xsub", eps["xsub"], "--xpub", eps["xpub"],
                     "--count", str(count), "--rate", str(rate), *flags])
        pub_out = json.loads(pub.stdout.read() or "{}")
        sub_out = json.loads(sub.stdout.read() or "{}")
        pub.wait(30)
        sub.wait(30)
    finally:
        stop_proxy(proxy)
    send = {int(k): v for k, v in pub_out.get("send_ns", {}).items()}
    recv = {int(k): v for k, v in sub_out.get("recv_ns", {}).items()}
    one_way = [recv[s] - send[s] for s in send if s in recv]
    rtt_half = [v // 2 for v in pub_out.get("rtt_ns", {}).values()]
    return {
        "count": count, "rate_hz": rate, "echo": echo, "raw": raw, "check": check, "received": len(one_way),
        "lost": count - len(one_way), "dropped_malformed": sub_out.get("dropped"),
        "one_way": percentiles(one_way), "rtt_half": percentiles(rtt_half),
        "codec": codec_costs(),
        "python": platform.python_version(), "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def table(r: dict) -> str:
    mode = ("raw frames, no codec" if r["raw"] else "codec + receiver validation") + \
        ("" if r["raw"] else ", sender check on" if r["check"] else ", sender check off") + \
        (", echo on" if r["echo"] else ", no echo")
    rows = [f"bus latency ({mode}): {r['count']} deltas at {r['rate_hz']:g} Hz, received {r['received']}, "
            f"lost {r['lost']}  ({r['platform']}, {r['cpus']} CPUs, Python {r['python']})",
            f"{'':10} {'p50':>8} {'p99':>8} {'p99.9':>8} {'max':>8} {'mean':>8}   (us)"]
    for name in ("one_way", "rtt_half"):
        p = r[name]
        if p.get("n"):
            rows.append(f"{name:10} {p['p50_us']:8.1f} {p['p99_us']:8.1f} {p['p999_us']:8.1f} "
                        f"{p['max_us']:8.1f} {p['mean_us']:8.1f}")
    c = r["codec"]
    rows.append(f"codec: {c['payload_bytes']} B payload, encode {c['encode_us']:.1f} us, "
                f"encode+check {c['encode_checked_us']:.1f} us, decode {c['decode_us']:.1f} us")
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--rate", type=float, default=1000.0, help="messages per second")
    ap.add_argument("--no-echo", action="store_true",
                    help="subscriber does not echo measured messages (one-way only, no RTT)")
    ap.add_argument("--raw", action="store_true",
                    help="transport floor: pre-encoded frames, subscriber skips decode")
    ap.add_argument("--no-check", action="store_true",
                    help="Publisher(check=False): skip the sender-side validation")
    ap.add_argument("--role", choices=("drive", "pub", "sub"), default="drive", help=argparse.SUPPRESS)
    ap.add_argument("--xsub", help=argparse.SUPPRESS)
    ap.add_argument("--xpub", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.role == "sub":
        run_sub(a.xsub, a.xpub, not a.no_echo, a.raw)
        return 0
    if a.role == "pub":
        run_pub(a.xsub, a.xpub, a.count, a.rate, not a.no_echo, a.raw, not a.no_check)
        return 0
    result = drive(a.count, a.rate, echo=not a.no_echo, raw=a.raw, check=not a.no_check)
    print(json.dumps(result, indent=2) if a.json else table(result))
    return 0 if result["received"] else 1


if __name__ == "__main__":
    sys.exit(main())
