"""`python -m sim ...` commands: tables, --json, and one-line errors with exit code 2."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sim import Simulator
from sim.cli import main
from sim.client import SimUnavailable, wait_until_up
from testing.harness import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def server():
    ep = f"tcp://127.0.0.1:{free_port()}"
    proc = subprocess.Popen([sys.executable, "-m", "sim", "serve", "--endpoint", ep,
                             "--tick-hz", "0"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_until_up(ep, timeout_s=20)
    except SimUnavailable:
        proc.kill()
        raise AssertionError(proc.stderr.read()) from None
    yield ep
    proc.kill()
    proc.wait(10)


@pytest.fixture(scope="module")
def acct():
    sim = Simulator.demo(seed=0)
    login = sorted(int(x) for x in sim.logins())[0]
    t = sim.terminal()
    t.initialize(login=login)
    symbol = next(s for s in t.symbols_get() if s.trade_mode == t.SYMBOL_TRADE_MODE_FULL)
    return login, symbol.name, symbol.volume_min


def run(capsys, *argv):
    """In-process ``main``; argparse errors exit via SystemExit, so catch that too."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def cli(*argv, endpoint=None):
    """Real subprocess: real exit code, real stderr."""
    args = [sys.executable, "-m", "sim", *map(str, argv)]
    if endpoint:
        args += ["--endpoint", endpoint]
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=30)


def test_trade_positions_modify_close_cycle(server, acct, capsys):
    login, symbol, vmin = acct
    ep = ["--endpoint", server, "--login", login]
    code, out, err = run(capsys, "trade", *ep, "buy", symbol, vmin * 3, "--comment", "cli",
                         "--magic", 9, "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["retcode"] == 10009
    ticket = res["order"]

    code, out, _ = run(capsys, "positions", *ep)
    assert code == 0
    header = out.splitlines()[0].split()
    assert header == ["ticket", "symbol", "type", "volume", "open", "sl", "tp", "current",
                      "profit", "comment"]
    assert any(line.split()[0] == str(ticket) and "buy" in line for line in out.splitlines()[2:])

    code, out, _ = run(capsys, "positions", *ep, "--json")
    pos = next(p for p in json.loads(out) if p["ticket"] == ticket)
    assert pos["comment"] == "cli" and pos["magic"] == 9

    sl = round(pos["price_open"] * 0.95, 5)
    code, out, err = run(capsys, "modify", *ep, ticket, "--sl", sl, "--json")
    assert code == 0 and json.loads(out)["retcode"] == 10009, err
    code, out, _ = run(capsys, "positions", *ep, "--json")
    after = next(p for p in json.loads(out) if p["ticket"] == ticket)
    assert after["sl"] == pytest.approx(sl) and after["tp"] == pos["tp"]

    code, out, _ = run(capsys, "close", *ep, ticket, "--volume", vmin)
    assert code == 0 and "10009" in out
    code, out, _ = run(capsys, "close", *ep, ticket, "--json")
    assert code == 0 and json.loads(out)["retcode"] == 10009
    code, out, _ = run(capsys, "positions", *ep, "--json")
    assert ticket not in [p["ticket"] for p in json.loads(out)]


def test_account_symbols_world_and_fault_commands(server, acct, capsys):
    login, symbol, _ = acct
    ep = ["--endpoint", server]
    code, out, _ = run(capsys, "account", *ep, "--login", login, "--json")
    assert code == 0 and json.loads(out)["login"] == login
    code, out, _ = run(capsys, "account", *ep, "--login", login)
    assert code == 0 and any(l.split()[:2] == ["login", str(login)] for l in out.splitlines())
    code, out, _ = run(capsys, "symbols", *ep, "--login", login)
    assert code == 0 and symbol in out
    code, out, _ = run(capsys, "symbols", *ep, "--login", login, "--json")
    assert symbol in [s["name"] for s in json.loads(out)]
    code, out, _ = run(capsys, "world", *ep, "--json")
    assert code == 0 and isinstance(json.loads(out), dict)

    code, out, err = run(capsys, "fault", *ep, "--login", login, "requote", "--count", 1, "--json")
    assert code == 0 and json.loads(out) == {"login": login, "fault": "retcode", "code": 10004,
                                             "count": 1}, err
    # injected retcodes hit API clients (a trade by hand does not go through the API)
    code, out, _ = run(capsys, "trade", *ep, "--login", login, "buy", symbol, acct[2], "--via", "api")
    assert code == 1 and "10004" in out   # refused by the broker -> exit 1
    for kind in (["reject", "--count", "2"], ["retcode", "--code", "10031"], ["latency", "--ms", "1"],
                 ["reply-lost"], ["algo-off"], ["algo-on"], ["disconnect"], ["reconnect"], ["clear"]):
        code, out, err = run(capsys, "fault", *ep, "--login", login, *kind)
        assert code == 0 and out.startswith(f"login {login}: {kind[0]}"), err


def test_price_and_advance_commands(server, acct, capsys):
    login, symbol, _ = acct
    code, out, err = run(capsys, "advance", "--endpoint", server, 30, "--json")
    assert code == 0 and isinstance(json.loads(out)["now_ms"], int), err
    code, _, err = run(capsys, "price", "--endpoint", server, symbol, "--move", 10)
    assert code == 0, err


@pytest.mark.parametrize("argv, needle", [
    (["positions", "--login", "987654"], "unknown login 987654"),
    (["trade", "--login", "{login}", "buy", "NOPE_SYM", "0.1"], "unknown symbol NOPE_SYM"),
    (["trade", "--login", "{login}", "buy", "{symbol}", "abc"], "invalid float value: 'abc'"),
    (["trade", "--login", "{login}", "buy", "{symbol}", "-1"], "volume must be positive"),
    (["trade", "--login", "{login}", "buy", "{symbol}", "0.1", "--comment", "x" * 60], "comment"),
    (["close", "--login", "{login}", "99999999"], "no open position with ticket 99999999"),
    (["modify", "--login", "{login}", "99999999", "--sl", "1"], "no open position"),
    (["fault", "--login", "987654", "requote"], "unknown login 987654"),
    (["fault", "--login", "{login}", "retcode"], "needs --code"),
    (["fault", "--login", "{login}", "bogus"], "invalid choice"),
    (["account"], "--login"),
])
def test_bad_input_is_one_line_and_exit_2(server, acct, capsys, argv, needle):
    login, symbol, _ = acct
    argv = [a.format(login=login, symbol=symbol) for a in argv]
    code, out, err = run(capsys, *argv, "--endpoint", server)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and needle in err and "Traceback" not in err


def test_real_subprocess_exit_codes(server, tmp_path):
    bad = cli("account", "--login", "1", "--endpoint", f"tcp://127.0.0.1:{free_port()}",
              "--timeout-ms", "200")
    assert bad.returncode == 2 and "not reachable" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr

    world = tmp_path / "broken.toml"
    world.write_text("[[brokers]\nname = \n")
    bad = cli("serve", "--world", world, "--endpoint", f"tcp://127.0.0.1:{free_port()}")
    assert bad.returncode == 2 and "broken.toml" in bad.stderr and "Traceback" not in bad.stderr
    missing = cli("serve", "--world", tmp_path / "nope.toml")
    assert missing.returncode == 2 and "nope.toml" in missing.stderr

    busy = cli("serve", "--endpoint", server)
    assert busy.returncode == 2 and "cannot bind" in busy.stderr

    num = cli("close", "--login", "1", "x1", endpoint=server)
    assert num.returncode == 2 and len(num.stderr.strip().splitlines()) == 1


def test_trader_command_runs_for_a_duration(server, acct):
    login, symbol, _ = acct
    res = cli("trader", "--login", login, "--rate", 20, "--duration", 1, "--seed", 1,
              "--symbols", symbol, "--json", endpoint=server)
    assert res.returncode == 0, res.stderr
    acts = [json.loads(l) for l in res.stdout.splitlines()]
    assert acts and {a["kind"] for a in acts} <= {"open", "modify", "partial_close", "close"}
    assert any(a["retcode"] == 10009 for a in acts)
    bad = cli("trader", "--login", login, "--symbols", "NOPE", endpoint=server)
    assert bad.returncode == 2 and "unknown symbol NOPE" in bad.stderr


def test_serve_json_reports_the_bound_wildcard_endpoint_and_stops_on_sigterm():
    import os
    proc = subprocess.Popen([sys.executable, "-m", "sim", "serve", "--endpoint",
                             "tcp://127.0.0.1:*", "--json", "--tick-hz", "0"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(proc.stdout.readline())
        assert first["event"] == "listening" and not first["endpoint"].endswith(":*")
        assert wait_until_up(first["endpoint"], timeout_s=20)["endpoint"] == first["endpoint"]
        assert first["logins"] and all(isinstance(x, int) for x in first["logins"])
    finally:
        proc.terminate()
        code = proc.wait(10)
    if os.name != "nt":
        assert code == 0 and json.loads(proc.stdout.read()) == {"event": "stopped"}


def test_trade_by_hand_is_recorded_as_client(server, acct, capsys):
    """`python -m sim trade` is a trade by hand (DEAL_REASON_CLIENT); --via picks MOBILE/WEB or an API script."""
    from sim.client import connect

    login, symbol, vmin = acct
    ep = ["--endpoint", server, "--login", login]
    mt5 = connect(server, login=login)
    seen = {}
    for via, reason in (("client", 0), ("mobile", 1), ("web", 2), ("api", 3)):
        args = ["--via", via] if via != "client" else []
        code, out, err = run(capsys, "trade", *ep, "buy", symbol, vmin, "--json", *args)
        assert code == 0, err
        ticket = json.loads(out)["order"]
        (d,) = mt5.history_deals_get(position=ticket)
        seen[via] = d.reason
        assert mt5.positions_get(ticket=ticket)[0].reason == reason
    assert seen == {"client": 0, "mobile": 1, "web": 2, "api": 3}
    ticket = next(p.ticket for p in mt5.positions_get() if p.reason == 3)
    code, out, err = run(capsys, "close", *ep, ticket)
    assert code == 0, err
    assert mt5.history_deals_get(position=ticket)[-1].reason == 0  # closed by hand


def _bid(capsys, ep, login, symbol) -> float:
    code, out, err = run(capsys, "symbols", *ep, "--login", login, "--json")
    assert code == 0, err
    return next(s["bid"] for s in json.loads(out) if s["name"] == symbol)


def test_fault_price_after_moves_the_price_once_right_after_the_named_read(server, acct, capsys):
    login, symbol, _ = acct
    ep = ["--endpoint", server]
    before = _bid(capsys, ep, login, symbol)
    target = round(before * 1.01, 3)
    code, out, err = run(capsys, "fault", *ep, "--login", login, "price-after", "--call", "positions_get",
                         "--symbol", symbol, "--bid", target, "--json")
    assert code == 0 and json.loads(out) == {"login": login, "fault": "price_after", "call": "positions_get",
                                             "symbol": symbol, "bid": target}, err
    assert _bid(capsys, ep, login, symbol) == pytest.approx(before)  # armed: waits for the named read
    code, _, err = run(capsys, "positions", *ep, "--login", login)
    assert code == 0, err
    assert _bid(capsys, ep, login, symbol) == pytest.approx(target)  # moved right after positions_get
    code, _, err = run(capsys, "price", *ep, symbol, "--set", before)
    assert code == 0, err
    run(capsys, "positions", *ep, "--login", login)
    assert _bid(capsys, ep, login, symbol) == pytest.approx(before)  # used up: once only
    code, out, err = run(capsys, "fault", *ep, "--login", login, "price-after", "--call", "orders_get,positions_get",
                         "--symbol", symbol, "--bid", target)
    assert code == 0 and out.startswith(f"login {login}: price-after call=orders_get,positions_get"), err
    run(capsys, "fault", *ep, "--login", login, "clear")


@pytest.mark.parametrize("extra, needle", [
    (["--symbol", "{symbol}", "--bid", "1.1"], "price-after needs --call"),
    (["--call", "order_send", "--symbol", "{symbol}", "--bid", "1.1"], "fault refused"),
    (["--call", "orders_get", "--symbol", "{symbol}", "--bid", "-1"], "fault refused"),
])
def test_fault_price_after_bad_input_is_one_line_and_exit_2(server, acct, capsys, extra, needle):
    login, symbol, _ = acct
    argv = ["fault", "--login", login, "price-after", *[a.format(symbol=symbol) for a in extra], "--endpoint", server]
    code, out, err = run(capsys, *argv)
    assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err and "Traceback" not in err
