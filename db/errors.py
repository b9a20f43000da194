"""Exceptions raised by every store backend.

Callers catch these, never driver exceptions, so a node can treat "the store is down"
the same way whether it runs on SQLite or MongoDB.
"""
from __future__ import annotations


class StoreError(Exception):
    """Base class of every store failure."""


class StoreUnavailable(StoreError):
    """The backend cannot serve the call: server down, disk full, file unwritable,
    lock held too long, store closed. Messages never contain credentials."""


class DuplicateAccount(StoreError):
    """``add_account`` (or a rename) hit an account name that already exists."""
