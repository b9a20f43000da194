"""The demo banner's simulator line: where the simulator serves and the exact command that
trades on the demo master (README "Quick start" / "The simulator")."""
from __future__ import annotations

import shlex

import pytest

from config import Settings
from fleet.demo import DEFAULT_SIM_ENDPOINT, DEMO_MASTER_LOGIN, demo_sim_line, sim_trade_command
from sim.cli import build_parser
from sim.client import DEFAULT_ENDPOINT


def test_the_default_endpoint_is_the_simulators_and_the_settings():
    assert DEFAULT_SIM_ENDPOINT == DEFAULT_ENDPOINT == Settings().SIM_ENDPOINT == "tcp://127.0.0.1:5570"


def test_on_the_default_port_the_command_is_the_readmes():
    assert sim_trade_command("tcp://127.0.0.1:5570") == "python -m sim trade --login 1001 buy EURUSD 0.10"
    assert demo_sim_line("tcp://127.0.0.1:5570") == (
        "  sim   : tcp://127.0.0.1:5570  (simulated brokers; trade on the master: "
        "python -m sim trade --login 1001 buy EURUSD 0.10)")


@pytest.mark.parametrize("sim,settings_endpoint", [
    ("tcp://127.0.0.1:40123", DEFAULT_SIM_ENDPOINT),  # 5570 was busy: the demo moved it
    ("tcp://127.0.0.1:5580", "tcp://127.0.0.1:5580"),  # SIM_ENDPOINT set: a window without those settings needs it
    ("tcp://127.0.0.1:5570", "tcp://127.0.0.1:5580"),  # --sim-endpoint: python -m sim would default to 5580
])
def test_off_the_default_the_endpoint_is_spelt_out(sim, settings_endpoint):
    command = sim_trade_command(sim, settings_endpoint=settings_endpoint)
    assert command == f"python -m sim trade --login 1001 --endpoint {sim} buy EURUSD 0.10"
    assert demo_sim_line(sim, settings_endpoint=settings_endpoint) == (
        f"  sim   : {sim}  (simulated brokers; trade on the master: {command})")


@pytest.mark.parametrize("sim", ["tcp://127.0.0.1:5570", "tcp://127.0.0.1:40123"])
def test_the_command_parses_as_python_m_sim_reads_it(sim):
    argv = shlex.split(sim_trade_command(sim))
    assert argv[:3] == ["python", "-m", "sim"]
    args = build_parser().parse_args(argv[3:])
    assert (args.command, args.login, args.side, args.symbol, args.volume, args.endpoint) == (
        "trade", DEMO_MASTER_LOGIN, "buy", "EURUSD", 0.1, sim)


def test_the_banner_carries_the_simulator_line_after_the_bus():
    from fleet.report import banner

    line = demo_sim_line("tcp://127.0.0.1:40123")
    text = banner(host="h", db_label="sqlite:///x.db", log_dir="/l", nodes=[], cli_hint="python cli.py status",
                  demo=True, duration_s=None, bus="tcp://a -> tcp://b (CURVE off (loopback))", sim_line=line)
    lines = text.splitlines()
    assert lines[lines.index(line) - 1].startswith("  bus   : ") and lines[lines.index(line) + 1] == "  logs  : /l"
    assert "sim   :" not in banner(host="h", db_label="d", log_dir="/l", nodes=[], cli_hint="c", demo=False,
                                   duration_s=None, bus="b")
