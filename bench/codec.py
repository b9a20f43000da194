"""Bus codec cost in-process: decode + validate a 1-position delta and a 100-position
snapshot, msgspec fast path (messaging/fastwire.py) against the stdlib validator; and the
simulator's reply codec (sim/client.py): a tick, account_info and 100 positions as msgpack
(``encode_reply``/``decode_reply``) against the tagged-JSON codec they used before.

    python bench/codec.py [--json]

Prints the best-of-7 mean per call in µs (timeit), and the load average at the time:
other processes on the machine slow both paths alike, so compare the ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from copier.models import Position  # noqa: E402
from messaging.codec import encode  # noqa: E402
from messaging.fastwire import fast_from_payload  # noqa: E402
from messaging.schema import Delta, Snapshot, decode, from_payload, parse_json  # noqa: E402

NOW = 1_700_000_000_000


def _pos(i: int) -> Position:
    return Position(ticket=123456789 + i, identifier=123456789 + i, symbol="EURUSD.raw", side="BUY", volume=1.25,
                    price_open=1.08517, sl=1.08017, tp=1.09517, time_msc=NOW, time_update_msc=NOW, magic=20240101,
                    comment="copyhub bench", price_current=1.08522, profit=6.25, contract_size=100000.0)


def _best_us(fn, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=7)) / number * 1e6


def run() -> dict:
    cases = {
        "delta_1": encode(Delta(master="m", epoch="e", seq=1, ts_ms=NOW, upsert_positions=(_pos(0),))),
        "snapshot_100": encode(Snapshot(master="m", epoch="e", seq=1, ts_ms=NOW, positions=tuple(_pos(i) for i in range(100)))),
    }
    out: dict = {"load_avg": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None}
    for name, frames in cases.items():
        payload = frames[1]
        n = 2000 if name == "delta_1" else 50
        assert fast_from_payload(payload) == from_payload(parse_json(payload))
        out[name] = {
            "bytes": len(payload),
            "stdlib_us": round(_best_us(lambda: from_payload(parse_json(payload)), n), 1),
            "msgspec_us": round(_best_us(lambda: fast_from_payload(payload), n), 1),
            "decode_us": round(_best_us(lambda: decode(frames), n), 1),  # what a node pays (frames, topic check)
            "encode_us": round(_best_us(lambda: encode(decode(frames)), n), 1),
        }
        out[name]["speedup"] = round(out[name]["stdlib_us"] / out[name]["msgspec_us"], 1)
    out["sim_replies"] = sim_replies()
    return out


def sim_replies() -> dict:
    """Encode (server) and decode (client) of the simulator's hot replies, JSON vs msgpack."""
    from sim import Simulator
    from sim.client import FAST_REPLY, decode_reply, dumps, encode_reply, loads

    sim = Simulator.demo(seed=1)
    mt5 = sim.terminal()
    mt5.initialize(login=1001)
    for _ in range(100):
        tick = mt5.symbol_info_tick("EURUSD")
        mt5.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.01, "type": 0, "price": tick.ask, "type_filling": 1})
    out = {}
    for name, payload in (("tick", mt5.symbol_info_tick("EURUSD")), ("account_info", mt5.account_info()),
                          ("positions_100", mt5.positions_get())):
        reply = [1, "ok", payload, (1, "Success"), "epoch"]
        old, new = dumps(reply), encode_reply(*reply)
        assert new[0] == FAST_REPLY and decode_reply(new)[2] == payload == loads(old)[2]
        n = 200 if name == "positions_100" else 5000
        out[name] = {"json_bytes": len(old[0]), "msgpack_bytes": len(new[1]) + len(new[2]),
                     "json_encode_us": round(_best_us(lambda: dumps(reply), n), 1),
                     "msgpack_encode_us": round(_best_us(lambda: encode_reply(*reply), n), 1),
                     "json_decode_us": round(_best_us(lambda: loads(old), n), 1),
                     "msgpack_decode_us": round(_best_us(lambda: decode_reply(new), n), 1)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    res = run()
    if ap.parse_args().json:
        print(json.dumps(res))
        return
    print(f"load average {res['load_avg']}")
    for name in ("delta_1", "snapshot_100"):
        r = res[name]
        print(f"{name:13} {r['bytes']:6} B  stdlib {r['stdlib_us']:8.1f} µs  msgspec {r['msgspec_us']:7.1f} µs  "
              f"({r['speedup']}x)  decode() {r['decode_us']:7.1f} µs  encode {r['encode_us']:7.1f} µs")
    print("simulator replies   encode JSON -> msgpack (server)     decode JSON -> msgpack (client)")
    for name, r in res["sim_replies"].items():
        print(f"{name:15} {r['json_encode_us']:8.1f} -> {r['msgpack_encode_us']:6.1f} µs "
              f"({r['json_encode_us'] / r['msgpack_encode_us']:.1f}x)   {r['json_decode_us']:8.1f} -> "
              f"{r['msgpack_decode_us']:6.1f} µs ({r['json_decode_us'] / r['msgpack_decode_us']:.1f}x)")


if __name__ == "__main__":
    main()
