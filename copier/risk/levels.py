"""Escalation levels: how much of a limit is used, and what the guardian does about it.

Every limit is watched at three fractions of its size (defaults 70/85/95 %): WARN
alerts the operator, PAUSE stops opening copies, FLATTEN closes everything and
locks the account until the next reset — all *before* the firm's own limit.
"""
from __future__ import annotations

from enum import Enum, IntEnum


class Level(IntEnum):
    OK = 0
    WARN = 1
    PAUSE = 2
    FLATTEN = 3


class Action(str, Enum):
    ALERT = "ALERT"
    PAUSE = "PAUSE"
    FLATTEN_AND_LOCK = "FLATTEN_AND_LOCK"


def level_for(used_fraction: float, warn_at: float, pause_at: float, flatten_at: float) -> Level:
    """Level reached when ``used_fraction`` (1.0 = the whole limit) of a limit is used."""
    if used_fraction >= flatten_at:
        return Level.FLATTEN
    if used_fraction >= pause_at:
        return Level.PAUSE
    if used_fraction >= warn_at:
        return Level.WARN
    return Level.OK


def actions_for(level: Level, actions_enabled: bool) -> tuple[Action, ...]:
    """Actions owed at ``level``; without enabled actions (masters) only an alert."""
    if level <= Level.OK:
        return ()
    if not actions_enabled:
        return (Action.ALERT,)
    if level == Level.WARN:
        return (Action.ALERT,)
    if level == Level.PAUSE:
        return (Action.ALERT, Action.PAUSE)
    return (Action.ALERT, Action.PAUSE, Action.FLATTEN_AND_LOCK)
