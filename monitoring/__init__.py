"""The node-side risk and monitoring loop (``Guardian``), its store-backed daily reports,
and the helpers they share. Pure rules live in ``copier.risk`` and ``copier.report``;
this package is the imperative shell that reads the terminal, acts, and records."""
