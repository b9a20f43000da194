"""The launcher sends supervision alerts (a node gone FATAL) through the alert dispatcher."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import structlog

from fleet.runner import Fleet, FleetOptions
from fleet.supervision import Alert


class Recorder:
    def __init__(self):
        self.sent = []

    def send(self, alert):
        self.sent.append(alert)
        return True


def _fleet(alerts):
    opts = FleetOptions(db_url="sqlite:///:memory:", bus_pub="tcp://127.0.0.1:1", bus_sub="tcp://127.0.0.1:2",
                        sim_endpoint="tcp://127.0.0.1:3", log_dir=Path("."))
    return Fleet(store=None, opts=opts, log=structlog.get_logger("t"), alerts=alerts)


def test_fatal_goes_to_the_phone_and_routine_events_do_not():
    rec = Recorder()
    fleet = _fleet(rec)
    node = SimpleNamespace(name="Apex_Slave_01")
    fleet._alert(node, Alert("Apex_Slave_01", "node_fatal", "critical", "5 crashes in 60 s: FATAL"))
    fleet._alert(node, Alert("Apex_Slave_01", "node_restarted", "info", "restarted"))
    assert len(rec.sent) == 1
    alert = rec.sent[0]
    assert alert.account == "Apex_Slave_01" and alert.level == "critical" and "FATAL" in alert.message


def test_no_dispatcher_is_fine():
    _fleet(None)._alert(SimpleNamespace(name="x"), Alert("x", "node_fatal", "critical", "m"))
