"""CURVE on the bus, on loopback: key files, the loopback rule, the proxy's ZAP
allow-list (unknown keys and clients without CURVE get nothing in or out), revocation,
and the refusals being logged. The cross-host proof is tests/integration/test_integration_netns.py."""
from __future__ import annotations

import logging
import os
import stat
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import zmq

from messaging import proxy as proxy_mod
from messaging.proxy import Proxy
from messaging.publisher import Publisher
from messaging.schema import Status
from messaging.security import (
    HUNG_UP,
    AllowList,
    BusSecurityError,
    ClientCurve,
    Refusals,
    ServerCurve,
    ZapHandler,
    check_public_key,
    client_curve,
    create_key_files,
    is_loopback_endpoint,
    load_key_file,
    new_key_pair,
    server_curve,
)
from messaging.subscriber import Subscriber

pytestmark = pytest.mark.timeout(60)


def settings(**values):
    base = {"BUS_KEY_FILE": "", "BUS_SERVER_KEY": "", "database_url": ""}
    return SimpleNamespace(**{**base, **values})


# ---------------------------------------------------------------------------- key files
def test_create_key_files_owner_only_and_round_trip(tmp_path):
    keys, secret, public, how = create_key_files(tmp_path / "keys", "VPS-1")
    assert secret.name == "VPS-1.key_secret" and public.name == "VPS-1.key"
    if os.name != "nt":
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        assert "0600" in how
    assert load_key_file(secret) == keys
    assert keys.secret not in public.read_text()  # the public file holds no secret
    assert keys.secret not in repr(keys) and keys.secret not in str(keys)
    with pytest.raises(BusSecurityError, match="exists"):
        create_key_files(tmp_path / "keys", "VPS-1")
    again, *_ = create_key_files(tmp_path / "keys", "VPS-1", overwrite=True)
    assert again.public != keys.public


@pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")
def test_load_refuses_a_key_file_others_can_read(tmp_path):
    _keys, secret, _public, _ = create_key_files(tmp_path, "h")
    os.chmod(secret, 0o644)
    with pytest.raises(BusSecurityError, match="chmod 600"):
        load_key_file(secret)


def test_load_refuses_public_only_and_mismatched_files(tmp_path):
    keys, secret, public, _ = create_key_files(tmp_path, "h")
    with pytest.raises(BusSecurityError, match="no secret key"):
        load_key_file(public, check_private=False)
    other = new_key_pair()
    secret.write_text(secret.read_text().replace(keys.secret, other.secret))
    with pytest.raises(BusSecurityError, match="does not belong"):
        load_key_file(secret)
    with pytest.raises(BusSecurityError, match="does not exist"):
        load_key_file(tmp_path / "missing.key_secret")


def test_check_public_key():
    key = new_key_pair().public
    assert check_public_key(f" {key}\n") == key
    for bad in ("", "abc", key[:-1] + "~", key + "A", None):
        with pytest.raises(BusSecurityError):
            check_public_key(bad)


# ---------------------------------------------------------------------------- where CURVE is required
@pytest.mark.parametrize("endpoint,loopback", [
    ("tcp://127.0.0.1:5555", True), ("tcp://127.8.9.1:5555", True), ("tcp://localhost:5555", True),
    ("tcp://[::1]:5555", True), ("inproc://x", True), ("ipc:///tmp/bus", True),
    ("tcp://10.77.0.1:5555", False), ("tcp://0.0.0.0:5555", False), ("tcp://*:5555", False),
    ("tcp://vps-1.example.com:5555", False), ("tcp://[2001:db8::1]:5555", False),
])
def test_loopback_rule(endpoint, loopback):
    assert is_loopback_endpoint(endpoint) is loopback


def test_client_needs_keys_off_loopback(tmp_path):
    assert client_curve("tcp://127.0.0.1:5555", settings()) is None
    with pytest.raises(BusSecurityError, match="BUS_KEY_FILE"):
        client_curve("tcp://10.77.0.1:5555", settings())
    keys, secret, _, _ = create_key_files(tmp_path, "h")
    with pytest.raises(BusSecurityError, match="BUS_SERVER_KEY"):
        client_curve("tcp://10.77.0.1:5555", settings(BUS_KEY_FILE=str(secret)))
    server = new_key_pair().public
    curve = client_curve("tcp://10.77.0.1:5555", settings(BUS_KEY_FILE=str(secret), BUS_SERVER_KEY=server))
    assert curve == ClientCurve(keys, server)
    # keys configured on loopback: CURVE on there too
    assert client_curve("tcp://127.0.0.1:5555", settings(BUS_KEY_FILE=str(secret), BUS_SERVER_KEY=server)) == curve


def test_publisher_and_subscriber_refuse_a_remote_bus_without_keys():
    """The sockets themselves apply the rule (this test process has no BUS_KEY_FILE)."""
    with pytest.raises(BusSecurityError):
        Publisher("tcp://192.0.2.1:5555")
    with pytest.raises(BusSecurityError):
        Subscriber("tcp://192.0.2.1:5556", ["status."])


def test_server_needs_keys_off_loopback(tmp_path):
    assert server_curve(["tcp://127.0.0.1:1", "tcp://127.0.0.1:2"], settings()) is None
    with pytest.raises(BusSecurityError, match="refuses"):
        server_curve(["tcp://127.0.0.1:1", "tcp://0.0.0.0:2"], settings())
    keys, secret, _, _ = create_key_files(tmp_path, "bus")
    assert server_curve(["tcp://*:1"], settings(BUS_KEY_FILE=str(secret))) == ServerCurve(keys)
    with pytest.raises(BusSecurityError, match="not the public key"):
        server_curve(["tcp://*:1"], settings(BUS_KEY_FILE=str(secret), BUS_SERVER_KEY=new_key_pair().public))


def test_proxy_main_refuses_to_start_off_loopback_without_keys(caplog):
    caplog.set_level(logging.ERROR, "messaging.proxy")
    code = proxy_mod.main(["--xsub", "tcp://0.0.0.0:*", "--xpub", "tcp://127.0.0.1:*"], settings=settings())
    assert code == 2
    assert "refuses" in caplog.text and "BUS_KEY_FILE" in caplog.text


def test_launcher_refuses_a_remote_bus_without_keys(capsys, tmp_path):
    import launcher

    code = launcher.main(["--no-proxy", "--bus-pub", "tcp://192.0.2.1:5555", "--bus-sub", "tcp://192.0.2.1:5556",
                          "--db", f"sqlite:///{tmp_path / 's.db'}", "--log-dir", str(tmp_path)])
    assert code == 2
    assert "BUS_KEY_FILE" in capsys.readouterr().err
    assert not (tmp_path / "s.db").exists()  # refused before touching anything


# ---------------------------------------------------------------------------- the proxy with ZAP
def status(node: str, n: int = 0) -> Status:
    return Status(node=node, role="slave", state="RUNNING", pid=os.getpid(), ts_ms=n)


class CurveBus:
    """An in-process CURVE proxy on loopback with a dict allow-list."""

    def __init__(self) -> None:
        self.server = new_key_pair()
        self.allowed: dict[str, str] = {}
        self.allow = AllowList(lambda: dict(self.allowed), refresh_s=3600)
        self.refusals = Refusals()
        self.proxy = Proxy("tcp://127.0.0.1:*", "tcp://127.0.0.1:*", curve=ServerCurve(self.server),
                           allow=self.allow, refusals=self.refusals)
        self.ctx = zmq.Context()
        self.sockets: list = []

    def client(self, name: str | None) -> ClientCurve:
        keys = new_key_pair()
        if name:
            self.allowed[keys.public] = name
            self.allow.refresh()
        return ClientCurve(keys, self.server.public)

    def pub(self, curve) -> Publisher:
        p = Publisher(self.proxy.xsub_endpoint, context=self.ctx, curve=curve)
        self.sockets.append(p)
        return p

    def sub(self, curve, topics=("status.",)) -> Subscriber:
        s = Subscriber(self.proxy.xpub_endpoint, list(topics), context=self.ctx, curve=curve)
        self.sockets.append(s)
        return s

    def wait_refusals(self, reason: str | tuple[str, ...], n: int = 1, timeout_s: float = 15.0) -> None:
        reasons = (reason,) if isinstance(reason, str) else reason
        deadline = time.monotonic() + timeout_s
        while sum(self.refusals.by_reason.get(r, 0) for r in reasons) < n:
            self.proxy.poll_security()
            assert time.monotonic() < deadline, f"no {reason!r} refusal: {self.refusals.by_reason}"
            time.sleep(0.02)

    def close(self) -> None:
        for s in self.sockets:
            s.close()
        self.proxy.stop()
        self.allow.stop()
        self.ctx.term()


@pytest.fixture
def bus():
    b = CurveBus()
    yield b
    b.close()


def deliver(pub: Publisher, sub: Subscriber, node: str, *, timeout_s: float = 15.0) -> int:
    """Publish numbered statuses of ``node`` until ``sub`` receives one; its number."""
    deadline = time.monotonic() + timeout_s
    n = 0
    while time.monotonic() < deadline:
        n += 1
        pub.publish(status(node, n))
        msg = sub.recv(30)
        while msg is not None:
            if msg.node == node:
                return msg.ts_ms
            msg = sub.recv(0)
    raise AssertionError(f"{node}: nothing arrived")


def test_allowed_keys_talk_unknown_and_plain_clients_get_nothing(bus, caplog):
    caplog.set_level(logging.INFO, "messaging.security")
    good_pub, good_sub = bus.pub(bus.client("VPS-1")), bus.sub(bus.client("VPS-2"))
    rogue_pub = bus.pub(bus.client(None))  # a key nobody allowed
    plain_pub = bus.pub(None)  # no CURVE at all
    rogue_sub, plain_sub = bus.sub(bus.client(None)), bus.sub(None)
    bus.wait_refusals("unknown key", 2)  # rogue publisher and subscriber
    # plain publisher and subscriber: a mechanism mismatch, or a hang-up when the client
    # noticed first (a race inside libzmq); logged either way
    bus.wait_refusals(("not CURVE", HUNG_UP), 2)
    assert deliver(good_pub, good_sub, "good") >= 1
    for _ in range(50):  # the rogues keep trying; the good pair keeps working
        rogue_pub.publish(status("rogue"))
        plain_pub.publish(status("plain"))
    last = deliver(good_pub, good_sub, "good-after")
    got = [m.node for m in good_sub.drain()]
    assert "rogue" not in got and "plain" not in got
    assert rogue_sub.drain() == [] and plain_sub.drain() == []
    assert last >= 1
    assert bus.proxy._zap.accepted >= 2
    logged = caplog.text
    assert "unknown key" in logged and ("mechanism mismatch" in logged or HUNG_UP in logged)
    assert rogue_pub.curve.keys.public in logged  # the refused key is named (public half only)
    assert rogue_pub.curve.keys.secret not in logged


def test_wrong_server_key_gets_nothing(bus):
    good_pub, good_sub = bus.pub(bus.client("VPS-1")), bus.sub(bus.client("VPS-2"))
    impostor = ClientCurve(bus.client("VPS-3").keys, new_key_pair().public)  # allowed key, wrong proxy key
    wrong = bus.pub(impostor)
    bus.wait_refusals("wrong server key", 1)
    for _ in range(20):
        wrong.publish(status("impostor"))
    deliver(good_pub, good_sub, "good")
    assert "impostor" not in [m.node for m in good_sub.drain()]


def test_revoked_key_is_cut_off_while_connected(bus):
    pub = bus.pub(bus.client("VPS-1"))
    stays = bus.sub(bus.client("VPS-2"))
    revoked_curve = bus.client("VPS-3")
    goes = bus.sub(revoked_curve)
    deliver(pub, stays, "before")
    deliver(pub, goes, "before-2")
    del bus.allowed[revoked_curve.keys.public]
    assert bus.allow.refresh() and bus.allow.revoked.is_set()
    bus.proxy.poll_security()  # rebinds: every peer reconnects through ZAP
    assert bus.proxy.restarts == 1 and not bus.allow.revoked.is_set()
    bus.wait_refusals("unknown key", 1)
    goes.drain()
    first = deliver(pub, stays, "after")
    for _ in range(20):
        pub.publish(status("after", 10_000))
    deliver(pub, stays, "after-2")
    assert [m for m in goes.drain() if m.node.startswith("after")] == []
    assert first >= 1


def test_zap_refuses_other_mechanisms_and_store_trouble_keeps_the_last_list():
    calls = {"n": 0}
    key = new_key_pair().public

    def load():
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError("store down")
        return {key: "VPS-1"}

    allow = AllowList(load, refresh_s=3600)
    assert allow.name_of(key) == "VPS-1"
    assert allow.refresh() is False and allow.name_of(key) == "VPS-1" and not allow.revoked.is_set()
    refusals = Refusals()
    ctx = zmq.Context()
    zap = ZapHandler(ctx, allow, refusals)
    try:
        reply = zap.reply([b"1.0", b"7", b"copyhub-publishers", b"10.0.0.9", b"", b"NULL"])
        assert reply[2] == b"400" and refusals.by_reason == {"not CURVE": 1}
        from zmq.utils import z85
        raw = z85.decode(key.encode())
        ok = zap.reply([b"1.0", b"8", b"copyhub-subscribers", b"10.0.0.9", b"", b"CURVE", raw])
        assert ok[2] == b"200" and ok[4] == b"VPS-1"
    finally:
        zap.stop()
        ctx.term()


def test_refusals_become_audit_events_once_per_key_and_address():
    events = []
    r = Refusals(events.append)
    for _ in range(3):
        r.refuse("unknown key", side="publisher", address="10.0.0.9", key="K" * 40)
    r.refuse("unknown key", side="publisher", address="10.0.0.10", key="K" * 40)
    assert r.total == 4 and len(events) == 2
    assert events[0]["address"] == "10.0.0.9" and events[0]["public_key"] == "K" * 40


def test_settings_bus_keys_validated_and_resolved(tmp_path):
    from config import SettingsError, load_settings

    key = new_key_pair().public
    cfg = load_settings({"COPYHUB_HOME": str(tmp_path), "COPYHUB_BUS_KEY_FILE": "keys/h.key_secret",
                         "COPYHUB_BUS_SERVER_KEY": key, "COPYHUB_BUS_HOST": "10.77.0.1"})
    assert Path(cfg.BUS_KEY_FILE) == (tmp_path / "keys" / "h.key_secret").resolve()
    assert cfg.bus_pub_endpoint == "tcp://10.77.0.1:5555"
    assert load_settings({"COPYHUB_HOME": str(tmp_path)}).BUS_KEY_FILE == ""
    with pytest.raises(SettingsError, match="BUS_SERVER_KEY"):
        load_settings({"COPYHUB_BUS_SERVER_KEY": "not-a-key"})
    with pytest.raises(SettingsError, match="BUS_HOST"):
        load_settings({"COPYHUB_BUS_HOST": "10.77.0.1:5555"})
    assert load_settings({"COPYHUB_BUS_HOST": "fd00::1"}).bus_sub_endpoint == "tcp://[fd00::1]:5556"


def test_cli_keys_create_allow_list_revoke(tmp_path, capsys):
    import json

    import cli

    db = f"sqlite:///{tmp_path / 's.db'}"
    assert cli.main(["--db", db, "--json", "keys", "create", "--name", "VPS-1", "--dir", str(tmp_path / "k"),
                     "--allow"]) == 0
    created = json.loads(capsys.readouterr().out)
    secret = (tmp_path / "k" / "VPS-1.key_secret").read_text()
    assert created["public_key"] in secret and created["allowed"] is True
    assert cli.main(["--db", db, "keys", "allow", str(tmp_path / "k" / "VPS-1.key"), "--name", "VPS-1"]) == 0
    assert "already" in capsys.readouterr().out
    other = new_key_pair().public
    assert cli.main(["--db", db, "keys", "allow", other, "--name", "VPS-2"]) == 0
    assert cli.main(["--db", db, "--json", "keys", "list"]) == 0
    out = capsys.readouterr().out.strip().splitlines()[-1]
    listed = json.loads(out)["keys"]
    assert [k["name"] for k in listed] == ["VPS-1", "VPS-2"]
    assert all(load_key_file(tmp_path / "k" / "VPS-1.key_secret").secret not in json.dumps(k) for k in listed)
    assert cli.main(["--db", db, "keys", "revoke", "VPS-2"]) == 0
    assert cli.main(["--db", db, "keys", "revoke", "VPS-2"]) == 2
    assert cli.main(["--db", db, "keys", "allow", "nonsense", "--name", "x"]) == 2
    from db import open_store
    with open_store(db) as store:
        assert [k["name"] for k in store.list_bus_keys()] == ["VPS-1"]


def _key_starting_with(char: str) -> str:
    """A valid Z85 public key whose first character is ``char`` (the first 4 bytes pick it)."""
    from zmq.utils import z85

    first = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#".index(char)
    raw = (first * 85 ** 4).to_bytes(4, "big") + bytes(range(28))
    key = z85.encode(raw).decode("ascii")
    assert key[0] == char
    return key


@pytest.mark.parametrize("char", ["-", ":", "a"])
def test_cli_keys_allow_and_revoke_take_a_key_whatever_its_first_character(tmp_path, capsys, char):
    """One public key in 85 begins with "-" (part of the Z85 alphabet): the CLI must take it
    as the key, not as an unknown option, both to allow and to revoke it."""
    import json

    import cli

    db = f"sqlite:///{tmp_path / 's.db'}"
    key = _key_starting_with(char)
    assert cli.main(["--db", db, "keys", "allow", key, "--name", "VPS-9"]) == 0
    assert cli.main(["--db", db, "--json", "keys", "list"]) == 0
    listed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["keys"]
    assert [(k["name"], k["public_key"]) for k in listed] == [("VPS-9", key)]
    assert cli.main(["--db", db, "keys", "revoke", key]) == 0
    from db import open_store
    with open_store(db) as store:
        assert store.list_bus_keys() == []


def test_cli_still_refuses_an_unknown_option_that_is_not_a_key(capsys):
    import cli

    with pytest.raises(SystemExit) as exc:
        cli.main(["keys", "allow", "--nonsense", "--name", "x"])
    assert exc.value.code == 2
    assert "required: key" in capsys.readouterr().err


@pytest.mark.skipif(sys.platform != "win32", reason="the Windows ACL path")
def test_windows_secret_file_acl(tmp_path):  # pragma: no cover - runs on Windows CI only
    import subprocess

    _keys, secret, _public, how = create_key_files(tmp_path, "h")
    acl = subprocess.run(["icacls", str(secret)], capture_output=True, text=True).stdout
    assert os.environ["USERNAME"].lower() in acl.lower() and "BUILTIN\\Users" not in acl and "ACL" in how


def test_plain_proxy_entry_point_refuses_curve_without_the_store_allow_list(tmp_path, caplog):
    """messaging/ never reads the store: CURVE's allow-list comes through fleet.busproxy."""
    caplog.set_level(logging.ERROR, "messaging.proxy")
    _keys, secret, _, _ = create_key_files(tmp_path, "bus")
    cfg = settings(BUS_KEY_FILE=str(secret), database_url=f"sqlite:///{tmp_path / 's.db'}")
    assert proxy_mod.main(["--xsub", "tcp://127.0.0.1:*", "--xpub", "tcp://127.0.0.1:*"], settings=cfg) == 2
    assert "fleet.busproxy" in caplog.text


def test_busproxy_reads_the_allow_list_from_the_store(tmp_path):
    from db import open_store
    from fleet.busproxy import store_allow_list

    url = f"sqlite:///{tmp_path / 's.db'}"
    key = new_key_pair().public
    with open_store(url) as store:
        store.allow_bus_key(key, "VPS-1")
    allow, record, close = store_allow_list(url)
    try:
        assert allow.name_of(key) == "VPS-1" and len(allow) == 1
        record({"reason": "unknown key", "side": "publisher", "address": "10.0.0.9", "public_key": key, "detail": ""})
        with open_store(url) as store:
            store.revoke_bus_key(key)
            assert [e["data"]["address"] for e in store.list_events(kind="bus_connection_refused")] == ["10.0.0.9"]
        assert allow.refresh() and allow.revoked.is_set() and allow.name_of(key) is None
    finally:
        close()


def test_refusal_log_lines_are_limited_per_window(caplog, monkeypatch):
    from messaging import security

    caplog.set_level(logging.INFO, "messaging.security")
    clock = [1000.0]
    monkeypatch.setattr(security.time, "monotonic", lambda: clock[0])
    r = Refusals()
    for _ in range(security.LOG_PER_WINDOW + 7):
        r.refuse("unknown key", side="publisher", address="10.0.0.9", key="K" * 40)
    r.refuse(HUNG_UP, side="publisher", level=logging.INFO, audit=False)  # another ident: its own budget
    assert caplog.text.count("unknown key") == security.LOG_PER_WINDOW and HUNG_UP in caplog.text
    clock[0] += security.LOG_WINDOW_S
    r.refuse("unknown key", side="publisher", address="10.0.0.9", key="K" * 40)
    assert "7 more not logged" in caplog.text
    assert r.total == security.LOG_PER_WINDOW + 9


def test_keys_create_prints_an_allow_command_a_shell_can_paste(tmp_path, capsys):
    """A Z85 key holds & ! $ ( ): the printed command names the public file, quoted."""
    import shlex

    import cli

    db = f"sqlite:///{tmp_path / 's.db'}"
    assert cli.main(["--db", db, "keys", "create", "--name", "VPS-2", "--dir", str(tmp_path / "my keys")]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if "keys allow" in ln)
    command = line[line.index("python cli.py"):line.index(" (or")]
    argv = shlex.split(command)  # what bash would pass: the quoted path with its space is one argument
    assert argv[:4] == ["python", "cli.py", "keys", "allow"] and argv[-2:] == ["--name", "VPS-2"]
    assert cli.main(["--db", db, *argv[2:]]) == 0
    from db import open_store
    with open_store(db) as store:
        assert [k["name"] for k in store.list_bus_keys()] == ["VPS-2"]
    assert "bus_host = " in out
    # on the bus host, BUS_HOST is what the proxy binds: an address the other hosts reach, never loopback
    hint = out[out.index("bus_host = "):out.index("bus_key_file = ")]
    assert "its proxy binds it" in hint and "127.0.0.1 on the bus host" not in hint


def test_keys_allow_of_a_listed_key_under_another_name_says_it_renamed(tmp_path, capsys):
    import cli

    db = f"sqlite:///{tmp_path / 's.db'}"
    key = new_key_pair().public
    assert cli.main(["--db", db, "keys", "allow", key, "--name", "VPS-2"]) == 0
    capsys.readouterr()
    assert cli.main(["--db", db, "keys", "allow", key, "--name", "VPS-2b"]) == 0
    assert "renamed: it was on the list as VPS-2" in capsys.readouterr().out


@pytest.mark.parametrize("module", ["fleet.busproxy", "messaging.proxy"])
def test_each_proxy_entry_point_names_itself_in_its_usage(module, capsys):
    """The launcher runs ``python -m fleet.busproxy``: its --help and errors must say so."""
    import importlib

    with pytest.raises(SystemExit) as exc:
        importlib.import_module(module).main(["--help"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: python -m {module} ")
