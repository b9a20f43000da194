"""``python -m sim``: see sim/cli.py and docs/simulator-server.md.

An entry point: the server endpoint defaults to the copyhub settings' ``SIM_ENDPOINT``
(settings file, ``COPYHUB_SIM_ENDPOINT``, default ``tcp://127.0.0.1:5570``), as every
other copyhub process reads it. The simulator package itself never reads settings.
"""
import sys

from sim.cli import main


def _settings_endpoint() -> tuple[list[str], str | None]:
    """(arguments without ``--config``, the settings' SIM_ENDPOINT) -- None outside a
    copyhub checkout (the simulator used on its own)."""
    try:
        import config
    except ImportError:
        return sys.argv[1:], None
    return config._ARGV, config.settings.SIM_ENDPOINT


if __name__ == "__main__":
    argv, endpoint = _settings_endpoint()
    sys.exit(main(argv, **({"default_endpoint": endpoint} if endpoint else {})))
