import json
import logging

import structlog

from utils.logging import setup_logging


def _lines(path):
    logging.shutdown()
    for h in logging.getLogger().handlers:
        h.flush()
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_json_file_lines_carry_node_account_and_trade_fields(tmp_path):
    log = setup_logging("slave-Apex", "Apex_Slave_01", log_dir=tmp_path, console=False)
    log.info("copy_opened", master_ticket=101, slave_ticket=202)
    structlog.get_logger("other").warning("plain")
    lines = _lines(tmp_path / "slave-Apex.log")
    assert lines[0]["event"] == "copy_opened"
    assert lines[0]["node"] == "slave-Apex" and lines[0]["account"] == "Apex_Slave_01"
    assert lines[0]["master_ticket"] == 101 and lines[0]["slave_ticket"] == 202
    assert lines[1]["node"] == "slave-Apex" and lines[1]["level"] == "warning"
    assert "timestamp" in lines[0]


def test_passwords_and_tokens_never_reach_the_log(tmp_path):
    log = setup_logging("n", log_dir=tmp_path, console=False)
    log.info("login", password="hunter2", terminal={"password_env": "X", "token": "abc"})
    text = (tmp_path / "n.log").read_text()
    assert "hunter2" not in text and "abc" not in text


def test_stdlib_loggers_are_rendered_too(tmp_path):
    setup_logging("n2", log_dir=tmp_path, console=False)
    logging.getLogger("zmq.something").error("boom %s", 1)
    lines = _lines(tmp_path / "n2.log")
    assert lines[-1]["event"] == "boom 1" and lines[-1]["node"] == "n2"


def test_console_output_is_readable_text(tmp_path, capsys):
    log = setup_logging("n3", log_dir=None, console=True)
    log.info("hello", master_ticket=5)
    err = capsys.readouterr().err
    assert "hello" in err and "master_ticket" in err and not err.lstrip().startswith("{")
