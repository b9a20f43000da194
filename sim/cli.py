"""``python -m sim ...``: serve a simulator and rehearse with it by hand.

Every command prints an aligned table (or JSON with ``--json``).  Bad input -- unknown login,
symbol or ticket, malformed world file, unreachable server, a bad number -- is one line on
stderr and exit code 2, never a traceback.  A trade request the broker refuses (retcode other
than DONE/PLACED) exits 1; success exits 0.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, NoReturn

from sim.client import DEFAULT_ENDPOINT, AdminClient, SimMT5Client, SimUnavailable, connect
from utils.table import format_table

EXIT_OK, EXIT_REFUSED, EXIT_BAD_INPUT = 0, 1, 2
TRADE_OK = (10008, 10009, 10010)  # PLACED, DONE, DONE_PARTIAL


class CliError(Exception):
    """Bad input or environment: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, no usage block
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


# ------------------------------------------------------------------ output

def _jsonable(v: Any) -> Any:
    if hasattr(v, "_asdict"):
        return {k: _jsonable(x) for k, x in v._asdict().items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, datetime):
        return v.isoformat()
    if hasattr(v, "tolist"):
        return v.tolist()
    return v


def print_json(obj: Any) -> None:
    print(json.dumps(_jsonable(obj), indent=None, separators=(",", ":")), flush=True)


def _kv_table(record: Any) -> str:
    return format_table(["field", "value"], list(_jsonable(record).items()))


def _price(x: float, digits: int) -> str:
    return "" if not x else f"{x:.{digits}f}"


# ------------------------------------------------------------------ connections

def _admin(args: argparse.Namespace) -> AdminClient:
    admin = AdminClient(args.endpoint, timeout_ms=args.timeout_ms)
    try:
        admin.ping()
    except SimUnavailable:
        raise CliError(f"simulator server not reachable at {args.endpoint}") from None
    return admin


def _check_login(admin: AdminClient, login: int) -> None:
    known = [int(x) for x in admin.logins()]
    if login not in known:
        raise CliError(f"unknown login {login} (known: {', '.join(map(str, known))})")


def _terminal(args: argparse.Namespace) -> SimMT5Client:
    _check_login(_admin(args), args.login)
    mt5 = connect(args.endpoint, timeout_ms=args.timeout_ms)
    if not mt5.initialize(login=args.login):
        code, desc = mt5.last_error()
        raise CliError(f"cannot log in as {args.login}: {desc} ({code})")
    return mt5


def _symbol(mt5: SimMT5Client, symbol: str, login: int) -> tuple[Any, Any]:
    info = mt5.symbol_info(symbol)
    if info is None:
        raise CliError(f"unknown symbol {symbol} for login {login}")
    mt5.symbol_select(symbol, True)
    tick = mt5.symbol_info_tick(symbol)
    if tick is None:
        raise CliError(f"no price for {symbol}: {mt5.last_error()[1]}")
    return info, tick


def _position(mt5: SimMT5Client, ticket: int, login: int) -> Any:
    got = mt5.positions_get(ticket=ticket)
    if not got:
        raise CliError(f"no open position with ticket {ticket} for login {login}")
    return got[0]


def filling_for(filling_mode: int, mt5: Any) -> int:
    from sim.trader import filling_for as pick
    return pick(filling_mode, mt5)


# ------------------------------------------------------------------ commands

MAX_DEFAULT_PROCESSES = 4


def default_processes() -> int:
    """Replica processes ``serve`` starts by default: none below 4 CPUs, else the CPU
    count less two (the main process and the clients need cores too), at most 4.

    Measured on 2 CPUs (docs/benchmarks.md): each read forwarded to a replica costs two
    more process wake-ups, so with the cores already shared by 20 polling clients the
    replicas made p50 slower (0.6 -> 1.4 ms); they pay off where the server, not the CPU
    count, is the limit."""
    cpus = os.cpu_count() or 1
    return 0 if cpus < 4 else min(MAX_DEFAULT_PROCESSES, cpus - 2)


def cmd_serve(args: argparse.Namespace) -> int:
    import zmq

    from sim import Simulator
    from sim.server import SimServer
    try:
        limit = 31 if args.comment_limit is None else args.comment_limit
        if args.world:
            sim = Simulator.from_file(args.world, seed=args.seed, comment_limit=limit)
        else:
            sim = Simulator.demo(seed=args.seed, comment_limit=limit)
    except Exception as exc:
        where = f"world file {args.world}" if args.world else "demo world"
        raise CliError(f"cannot load {where}: {exc}") from None
    if args.tick_hz < 0:
        raise CliError("--tick-hz must be >= 0")
    if args.workers < 0:
        raise CliError("--workers must be >= 0")
    processes = default_processes() if args.processes is None else args.processes
    if processes < 0:
        raise CliError("--processes must be >= 0")
    if processes:
        from sim.cluster import ClusterServer
        server = ClusterServer(sim, args.endpoint, tick_hz=args.tick_hz, workers=args.workers,
                               processes=processes)
    else:
        server = SimServer(sim, args.endpoint, tick_hz=args.tick_hz, workers=args.workers)
    try:
        endpoint = server.bind()
    except zmq.ZMQError as exc:
        raise CliError(f"cannot bind {args.endpoint}: {exc}") from None

    def on_signal(*_: Any) -> None:
        server.stop(join=False)

    for name in ("SIGINT", "SIGTERM", "SIGBREAK"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), on_signal)
    world = args.world or "demo world"
    if args.json:
        print_json({"event": "listening", "endpoint": endpoint, "world": world,
                    "seed": args.seed, "tick_hz": args.tick_hz, "processes": processes + 1,
                    "logins": sim.logins()})
    else:
        print(f"sim server listening on {endpoint} ({world}, seed {args.seed}, "
              f"tick {args.tick_hz:g} Hz, {processes + 1} process{'es' if processes else ''}, logins {', '.join(map(str, sim.logins()))})",
              flush=True)
    server.serve_forever()
    print_json({"event": "stopped"}) if args.json else print("sim server stopped", flush=True)
    return EXIT_OK


def cmd_positions(args: argparse.Namespace) -> int:
    mt5 = _terminal(args)
    positions = mt5.positions_get()
    if positions is None:
        raise CliError(f"positions_get failed: {mt5.last_error()}")
    if args.json:
        print_json(positions)
        return EXIT_OK
    digits: dict[str, int] = {}
    rows = []
    for p in positions:
        if p.symbol not in digits:
            info = mt5.symbol_info(p.symbol)
            digits[p.symbol] = info.digits if info is not None else 5
        d = digits[p.symbol]
        rows.append([p.ticket, p.symbol, "buy" if p.type == mt5.POSITION_TYPE_BUY else "sell",
                     f"{p.volume:g}", _price(p.price_open, d), _price(p.sl, d), _price(p.tp, d),
                     _price(p.price_current, d), f"{p.profit:.2f}", p.comment])
    print(format_table(["ticket", "symbol", "type", "volume", "open", "sl", "tp", "current",
                        "profit", "comment"], rows))
    return EXIT_OK


def _send(mt5: SimMT5Client, request: dict, args: argparse.Namespace) -> int:
    """``trade``/``close``/``modify`` are trades by hand (the terminal records DEAL_REASON_CLIENT,
    MOBILE or WEB with ``--via``); ``--via api`` sends them as a script would (EXPERT)."""
    via = getattr(args, "via", "client")
    if via == "api":
        res = mt5.order_send(request)
    else:
        try:
            res = _admin(args).manual_trade(args.login, request, source=via)
        except ValueError as exc:
            raise CliError(str(exc)) from None
    if res is None:
        code, desc = mt5.last_error()
        if code == -2:
            raise CliError(f"order refused by the terminal: {desc}")
        print(f"sim: order_send failed: {desc} ({code})", file=sys.stderr)
        return EXIT_REFUSED
    if args.json:
        print_json(res)
    else:
        print(format_table(["retcode", "comment", "order", "deal", "volume", "price"],
                           [[res.retcode, res.comment, res.order, res.deal, str(res.volume),
                             str(res.price)]]))
    return EXIT_OK if res.retcode in TRADE_OK else EXIT_REFUSED


def cmd_trade(args: argparse.Namespace) -> int:
    if args.volume <= 0:
        raise CliError(f"volume must be positive, got {args.volume:g}")
    mt5 = _terminal(args)
    info, tick = _symbol(mt5, args.symbol, args.login)
    buy = args.side == "buy"
    req: dict[str, Any] = {
        "action": mt5.TRADE_ACTION_DEAL, "symbol": args.symbol, "volume": args.volume,
        "type": mt5.ORDER_TYPE_BUY if buy else mt5.ORDER_TYPE_SELL,
        "price": tick.ask if buy else tick.bid, "deviation": args.deviation,
        "magic": args.magic, "type_filling": filling_for(info.filling_mode, mt5),
        "type_time": mt5.ORDER_TIME_GTC,
    }
    for key in ("sl", "tp", "comment"):
        if getattr(args, key) is not None:
            req[key] = getattr(args, key)
    return _send(mt5, req, args)


def cmd_close(args: argparse.Namespace) -> int:
    mt5 = _terminal(args)
    pos = _position(mt5, args.ticket, args.login)
    volume = pos.volume if args.volume is None else args.volume
    if volume <= 0:
        raise CliError(f"volume must be positive, got {volume:g}")
    info, tick = _symbol(mt5, pos.symbol, args.login)
    buy = pos.type == mt5.POSITION_TYPE_BUY
    req = {
        "action": mt5.TRADE_ACTION_DEAL, "symbol": pos.symbol, "volume": volume,
        "type": mt5.ORDER_TYPE_SELL if buy else mt5.ORDER_TYPE_BUY, "position": pos.ticket,
        "price": tick.bid if buy else tick.ask, "deviation": args.deviation,
        "magic": pos.magic, "type_filling": filling_for(info.filling_mode, mt5),
        "type_time": mt5.ORDER_TIME_GTC,
    }
    return _send(mt5, req, args)


def cmd_modify(args: argparse.Namespace) -> int:
    if args.sl is None and args.tp is None:
        raise CliError("give --sl and/or --tp (0 removes a level)")
    mt5 = _terminal(args)
    pos = _position(mt5, args.ticket, args.login)
    req = {"action": mt5.TRADE_ACTION_SLTP, "symbol": pos.symbol, "position": pos.ticket,
           "sl": pos.sl if args.sl is None else args.sl,
           "tp": pos.tp if args.tp is None else args.tp, "magic": pos.magic}
    return _send(mt5, req, args)


def cmd_account(args: argparse.Namespace) -> int:
    mt5 = _terminal(args)
    acc = mt5.account_info()
    if acc is None:
        raise CliError(f"account_info failed: {mt5.last_error()}")
    print_json(acc) if args.json else print(_kv_table(acc))
    return EXIT_OK


def cmd_symbols(args: argparse.Namespace) -> int:
    mt5 = _terminal(args)
    symbols = mt5.symbols_get()
    if symbols is None:
        raise CliError(f"symbols_get failed: {mt5.last_error()}")
    if args.json:
        print_json(symbols)
        return EXIT_OK
    rows = [[s.name, s.digits, f"{s.point:g}", f"{s.trade_contract_size:g}",
             f"{s.volume_min:g}", f"{s.volume_step:g}", f"{s.volume_max:g}", s.filling_mode,
             s.trade_stops_level, _price(s.bid, s.digits), _price(s.ask, s.digits),
             s.description] for s in symbols]
    print(format_table(["symbol", "digits", "point", "contract", "vol_min", "vol_step",
                        "vol_max", "filling", "stops", "bid", "ask", "description"], rows))
    return EXIT_OK


FAULTS = {  # CLI name -> (engine kind, fixed params)
    "requote": ("retcode", {"code": 10004}),
    "reject": ("retcode", {"code": 10006}),
    "retcode": ("retcode", {}),
    "latency": ("latency", {}),
    "reply-lost": ("reply_lost", {}),
    "disconnect": ("disconnect", {}),
    "reconnect": ("reconnect", {}),
    "algo-off": ("algo_off", {}),
    "algo-on": ("algo_on", {}),
    "wrong-login": ("wrong_login", {}),
    "right-login": ("right_login", {}),
    "price-after": ("price_after", {}),
}


def cmd_fault(args: argparse.Namespace) -> int:
    admin = _admin(args)
    _check_login(admin, args.login)
    if args.kind == "clear":
        admin.clear_faults(args.login)
        params: dict[str, Any] = {}
        kind = "clear"
    else:
        kind, fixed = FAULTS[args.kind]
        params = dict(fixed)
        if kind == "retcode":
            if args.code is not None:
                params["code"] = args.code
            if "code" not in params:
                raise CliError("retcode needs --code N (e.g. 10004)")
            params["count"] = args.count
        elif kind == "reply_lost":
            params["count"] = args.count
        elif kind == "latency":
            if args.ms is None or args.ms < 0:
                raise CliError("latency needs --ms N (N >= 0)")
            params["ms"] = args.ms
        elif kind == "wrong_login":
            if args.actual is None:
                raise CliError("wrong-login needs --actual LOGIN (the account the terminal really lands on)")
            _check_login(admin, args.actual)
            params["actual"] = args.actual
        elif kind == "price_after":
            if not args.call or not args.symbol or args.bid is None:
                raise CliError("price-after needs --call orders_get|positions_get (comma-separated for either), "
                               "--symbol S and --bid PRICE")
            params.update(call=args.call, symbol=args.symbol, bid=args.bid)
            if args.broker:
                params["broker"] = args.broker
        if args.count < 1:
            raise CliError(f"--count must be >= 1, got {args.count}")
        try:
            admin.inject_fault(args.login, kind, **params)
        except (ValueError, KeyError, TypeError) as exc:
            raise CliError(f"fault refused: {exc}") from None
    out = {"login": args.login, "fault": kind, **params}
    if args.json:
        print_json(out)
    else:
        print(" ".join([f"login {args.login}: {args.kind}",
                        *(f"{k}={v}" for k, v in params.items())]))
    return EXIT_OK


def cmd_terminals(args: argparse.Namespace) -> int:
    logins = _admin(args).terminal_logins()
    if args.json:
        print_json(logins)
    elif not logins:
        print("the world names no terminals")
    else:
        print(format_table(["path", "login"], [[p, "-" if x is None else x] for p, x in logins.items()]))
    return EXIT_OK


def cmd_switch_terminal(args: argparse.Namespace) -> int:
    admin = _admin(args)
    try:
        admin.switch_terminal(args.path, args.to)
    except (ValueError, KeyError, TypeError) as exc:
        raise CliError(f"switch refused: {exc}") from None
    out = {"path": args.path, "login": args.to}
    print_json(out) if args.json else print(f"{args.path}: now logged into {args.to}")
    return EXIT_OK


def cmd_world(args: argparse.Namespace) -> int:
    summary = _admin(args).world_summary()
    if args.json:
        print_json(summary)
    else:
        for k, v in summary.items():
            print(f"{k}: {json.dumps(_jsonable(v))}")
    return EXIT_OK


def cmd_price(args: argparse.Namespace) -> int:
    admin = _admin(args)
    try:
        if args.set is not None:
            admin.set_price(args.symbol, args.set, broker=args.broker)
        elif args.move is not None:
            admin.move_price(args.symbol, args.move, broker=args.broker)
        else:
            raise CliError("give --set BID or --move POINTS")
    except (ValueError, KeyError) as exc:
        raise CliError(f"price change refused: {exc}") from None
    out = {"symbol": args.symbol, "broker": args.broker, "set": args.set, "move": args.move}
    print_json(out) if args.json else print(f"{args.symbol}: price updated")
    return EXIT_OK


def cmd_market(args: argparse.Namespace) -> int:
    state = {"open": True, "closed": False, "auto": None}[args.state]
    try:
        _admin(args).set_session(args.symbol, args.broker, state)
    except (ValueError, KeyError) as exc:
        raise CliError(f"market change refused: {exc}") from None
    out = {"symbol": args.symbol, "broker": args.broker, "state": args.state}
    print_json(out) if args.json else print(f"{args.symbol} at {args.broker}: market {args.state}")
    return EXIT_OK


def cmd_advance(args: argparse.Namespace) -> int:
    if args.seconds < 0:
        raise CliError("seconds must be >= 0")
    admin = _admin(args)
    admin.advance(args.seconds)
    now = admin.now_ms()
    stamp = datetime.fromtimestamp(now / 1000, tz=timezone.utc).isoformat()
    print_json({"now_ms": now}) if args.json else print(f"world time {stamp}")
    return EXIT_OK


def cmd_trader(args: argparse.Namespace) -> int:
    from sim.trader import DemoTrader
    if args.rate <= 0:
        raise CliError(f"--rate must be > 0, got {args.rate:g}")
    if args.max_positions < 1:
        raise CliError("--max-positions must be >= 1")
    mt5 = _terminal(args)
    if args.symbols:
        symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
        for s in symbols:
            _symbol(mt5, s, args.login)
    else:
        symbols = [s.name for s in (mt5.symbols_get() or ()) if s.trade_mode == 4][:4]
    if not symbols:
        raise CliError(f"no tradeable symbol for login {args.login}")
    trader = DemoTrader(mt5, symbols, max_positions=args.max_positions, seed=args.seed,
                        magic=args.magic)
    stop = threading.Event()
    for name in ("SIGINT", "SIGTERM", "SIGBREAK"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), lambda *_: stop.set())

    def show(a: Any) -> None:
        if args.json:
            print_json(a.as_dict())
            return
        res = a.retcode if a.retcode is not None else f"error {a.error}"
        print(f"{datetime.now():%H:%M:%S} {a.kind:<13} {a.symbol:<8} #{a.ticket:<10} "
              f"{a.volume:<6g} -> {res} {a.comment}", flush=True)

    if not args.json:
        print(f"demo trader on login {args.login}: {', '.join(symbols)} at {args.rate:g}/s, "
              f"max {args.max_positions} positions (Ctrl+C stops)", flush=True)
    n = trader.run(rate=args.rate, duration=args.duration, stop=stop, on_action=show)
    if not args.json:
        print(f"{n} actions", flush=True)
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    """Run a script written for ``import MetaTrader5 as mt5`` on the simulator, unchanged."""
    import os

    from sim.dropin import run_script

    if not os.path.isfile(args.script):
        raise CliError(f"no script {args.script}")
    if args.world and args.endpoint:
        raise CliError("--world runs a world in this process; a served world (--endpoint) "
                       "has its own: give one of them")
    if args.tick_hz < 0:
        raise CliError("--tick-hz must be >= 0")
    login = args.login
    if args.endpoint:
        admin = _admin(args)
        if login is not None:
            _check_login(admin, login)
        admin.close()
    else:
        from sim import Simulator
        try:  # check the world (and the login) before the script starts
            sim = Simulator.from_file(args.world, seed=args.seed) if args.world else Simulator.demo(seed=args.seed)
        except Exception as exc:
            raise CliError(f"cannot load {'world file ' + args.world if args.world else 'demo world'}: {exc}") from None
        if login is not None and login not in sim.logins():
            raise CliError(f"unknown login {login} (known: {', '.join(map(str, sim.logins()))})")
    return run_script(args.script, args.args, world=args.world, seed=args.seed, login=login,
                      endpoint=args.endpoint, tick_hz=args.tick_hz, timeout_ms=args.timeout_ms)


# ------------------------------------------------------------------ parser

def cmd_balance(args: argparse.Namespace) -> int:
    """Deposit (AMOUNT > 0) or withdraw (< 0) on a login, recorded as a balance deal."""
    admin = _admin(args)
    _check_login(admin, args.login)
    try:
        out = admin.balance_operation(args.login, args.amount, kind=args.kind, comment=args.comment or "")
    except (ValueError, KeyError, TypeError) as exc:
        raise CliError(f"balance operation refused: {exc}") from None
    if args.json:
        print_json(out)
    else:
        print(format_table(["login", "deal", "kind", "amount", "balance", "credit", "equity"],
                           [[out["login"], out["deal"], out["kind"], f"{out['amount']:.2f}", f"{out['balance']:.2f}",
                             f"{out['credit']:.2f}", f"{out['equity']:.2f}"]]))
    return EXIT_OK


def _add_balance_parser(add: Any) -> None:
    sp = add("balance", cmd_balance, "deposit (AMOUNT > 0) or withdraw (< 0), as a balance deal")
    sp.add_argument("amount", type=float, help="money in the account currency; negative withdraws")
    sp.add_argument("--kind", choices=["balance", "credit", "correction", "bonus", "charge"], default="balance",
                    help="deal type: DEAL_TYPE_BALANCE (default), _CREDIT, _CORRECTION, _BONUS, _CHARGE")
    sp.add_argument("--comment")


def build_parser(default_endpoint: str = DEFAULT_ENDPOINT) -> argparse.ArgumentParser:
    """The ``python -m sim`` parser; ``default_endpoint``: the server endpoint when
    ``--endpoint`` is not given (``python -m sim`` passes the settings' SIM_ENDPOINT)."""
    p = _Parser(prog="sim", description="MetaTrader 5 simulator: serve and rehearse.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def add(name: str, func: Any, help_: str, login: bool = True) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.add_argument("--endpoint", default=default_endpoint,
                        help=f"server endpoint (default {default_endpoint}: SIM_ENDPOINT)")
        sp.add_argument("--json", action="store_true", help="print JSON for scripts")
        sp.add_argument("--timeout-ms", type=int, default=2000, help="per-call timeout")
        if login:
            sp.add_argument("--login", type=int, required=True, help="account login")
        sp.set_defaults(func=func)
        return sp

    sp = add("serve", cmd_serve, "serve a simulator over ZeroMQ", login=False)
    sp.add_argument("--world", help="world TOML file (default: the built-in demo world)")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--tick-hz", type=float, default=10.0,
                    help="wall-clock ticks per second; 0 freezes the world clock")
    sp.add_argument("--comment-limit", type=int, default=None,
                    help="max order comment length (default 31)")
    sp.add_argument("--workers", type=int, default=8,
                    help="request worker threads; 0 = run calls on the socket thread "
                         "(lower latency, but an injected latency fault stalls everyone)")
    sp.add_argument("--processes", type=int, default=None,
                    help="replica processes that answer read calls in parallel, each holding "
                         f"the same world (default here {default_processes()}: none below 4 CPUs, "
                         f"else CPUs - 2, at most {MAX_DEFAULT_PROCESSES}); 0 = one process")

    add("positions", cmd_positions, "list open positions")
    add("account", cmd_account, "show account_info")
    add("symbols", cmd_symbols, "list symbols")

    sp = add("trade", cmd_trade, "open a market position")
    sp.add_argument("side", choices=["buy", "sell"])
    sp.add_argument("symbol")
    sp.add_argument("volume", type=float)
    sp.add_argument("--sl", type=float)
    sp.add_argument("--tp", type=float)
    sp.add_argument("--comment")
    sp.add_argument("--magic", type=int, default=0)
    sp.add_argument("--deviation", type=int, default=20)
    sp.add_argument("--via", choices=["client", "mobile", "web", "api"], default="client",
                    help="who trades: by hand in the terminal (default), the mobile app, the web "
                         "terminal (reason CLIENT/MOBILE/WEB), or as an API script (EXPERT)")

    sp = add("close", cmd_close, "close (or partially close) a position")
    sp.add_argument("ticket", type=int)
    sp.add_argument("--volume", type=float)
    sp.add_argument("--deviation", type=int, default=20)
    sp.add_argument("--via", choices=["client", "mobile", "web", "api"], default="client",
                    help="who trades: by hand in the terminal (default), the mobile app, the web "
                         "terminal (reason CLIENT/MOBILE/WEB), or as an API script (EXPERT)")

    sp = add("modify", cmd_modify, "change a position's SL/TP (0 removes)")
    sp.add_argument("ticket", type=int)
    sp.add_argument("--sl", type=float)
    sp.add_argument("--tp", type=float)
    sp.add_argument("--via", choices=["client", "mobile", "web", "api"], default="client",
                    help="who trades: by hand in the terminal (default), the mobile app, the web "
                         "terminal (reason CLIENT/MOBILE/WEB), or as an API script (EXPERT)")

    sp = add("fault", cmd_fault, "inject a fault into a login's terminal")
    sp.add_argument("kind", choices=[*FAULTS, "clear"])
    sp.add_argument("--count", type=int, default=1)
    sp.add_argument("--code", type=int)
    sp.add_argument("--ms", type=int)
    sp.add_argument("--actual", type=int, help="wrong-login: the login the terminal really lands on")
    sp.add_argument("--call", help="price-after: the read after which the price moves (orders_get, "
                                   "positions_get, or both comma-separated), once")
    sp.add_argument("--symbol", help="price-after: the symbol whose bid is set")
    sp.add_argument("--bid", type=float, help="price-after: the new bid (as `price --set`)")
    sp.add_argument("--broker", help="price-after: the server whose quote moves (default: this login's)")

    add("terminals", cmd_terminals, "the world's terminals and their current logins", login=False)
    sp = add("switch-terminal", cmd_switch_terminal,
             "log a terminal into another account by hand (every session on it follows)", login=False)
    sp.add_argument("path", help=r"terminal path, e.g. 'C:\MT5\FTMO\terminal64.exe'")
    sp.add_argument("to", type=int, metavar="LOGIN")

    add("world", cmd_world, "world summary", login=False)

    sp = add("price", cmd_price, "set or move a symbol's price", login=False)
    sp.add_argument("symbol")
    sp.add_argument("--set", type=float, metavar="BID")
    sp.add_argument("--move", type=float, metavar="POINTS")
    sp.add_argument("--broker")

    sp = add("market", cmd_market, "open or close a symbol's market now (closed: 10018, frozen quote)", login=False)
    sp.add_argument("symbol")
    sp.add_argument("state", choices=["open", "closed", "auto"], help="auto = the world file's sessions")
    sp.add_argument("--broker", required=True)

    sp = add("advance", cmd_advance, "advance the world clock", login=False)
    sp.add_argument("seconds", type=float)

    sp = sub.add_parser(
        "run", help="run a MetaTrader5 script on the simulator, unchanged",
        description="Run SCRIPT with 'import MetaTrader5' bound to one simulated terminal: "
                    "in this process (the demo world, or --world FILE) or on a served world "
                    "(--endpoint). A bare mt5.initialize() logs into --login (default: the "
                    "world's first account).")
    sp.add_argument("--login", type=int, help="the account saved in the terminal")
    sp.add_argument("--world", help="world TOML file to run in-process (default: the demo world)")
    sp.add_argument("--endpoint", help="a served simulator instead (python -m sim serve)")
    sp.add_argument("--seed", type=int, default=0, help="in-process world seed")
    sp.add_argument("--tick-hz", type=float, default=10.0,
                    help="in-process: wall-clock ticks per second; 0 freezes the world clock at its start")
    sp.add_argument("--timeout-ms", type=int, default=10_000, help="per-call timeout (served world)")
    sp.add_argument("script", help="the Python script")
    sp.add_argument("args", nargs=argparse.REMAINDER, help="the script's own arguments")
    sp.set_defaults(func=cmd_run)

    sp = add("trader", cmd_trader, "run the demo trader")
    sp.add_argument("--rate", type=float, default=1.0, help="actions per second")
    sp.add_argument("--max-positions", type=int, default=5)
    sp.add_argument("--symbols", help="comma-separated, e.g. EURUSD,XAUUSD")
    sp.add_argument("--seed", type=int)
    sp.add_argument("--duration", type=float, help="seconds (default: until Ctrl+C)")
    sp.add_argument("--magic", type=int, default=770077)
    _add_balance_parser(add)
    return p


def main(argv: Sequence[str] | None = None, *, default_endpoint: str = DEFAULT_ENDPOINT) -> int:
    parser = build_parser(default_endpoint)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CliError as exc:
        print(f"sim: error: {exc}", file=sys.stderr, flush=True)
        return EXIT_BAD_INPUT
    except SimUnavailable as exc:
        print(f"sim: error: {exc}", file=sys.stderr, flush=True)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return EXIT_OK
    except BrokenPipeError:
        return EXIT_OK
