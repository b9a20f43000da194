"""The monitor's web side: views over store documents, the collector, metrics, security and the app."""
