"""The copyhub bus: message schema and codec, XSUB/XPUB proxy, publisher, subscriber,
and the Clone-pattern state replication (``clone``). See docs/bus.md."""
