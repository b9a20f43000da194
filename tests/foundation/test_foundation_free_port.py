"""``testing.harness.free_port`` never hands out one port twice in a process: the kernel
can give the same free port to two binds in a row, and a fleet's bus proxy once got one
port for both of its ends (it could not bind, and the whole test timed out)."""
from __future__ import annotations

from testing import harness


class _Socket:
    """A socket whose binds get the ports of ``queue`` in turn."""

    queue: list[int] = []

    def __init__(self, *args: object) -> None:
        self.port = 0

    def __enter__(self) -> _Socket:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def bind(self, addr: tuple[str, int]) -> None:
        self.port = self.queue.pop(0)

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)


def test_a_port_the_kernel_gives_twice_is_handed_out_once(monkeypatch):
    monkeypatch.setattr(harness, "_HANDED_OUT", set())
    monkeypatch.setattr(harness.socket, "socket", _Socket)
    _Socket.queue = [41001, 41001, 41001, 41002]
    assert [harness.free_port(), harness.free_port()] == [41001, 41002]
    assert _Socket.queue == []
