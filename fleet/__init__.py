"""The fleet: what launcher.py, setup_db.py and cli.py are built from.

``supervision`` is the pure per-node state machine, ``reconcile`` the pure plan from
account documents, ``procs`` the process handles (the only module that spawns or kills),
``demo`` the demo world's accounts, ``report`` the banner, status table and exit summary.
"""
