"""The ground floor: facts every layer shares (the application record and its contract, settings,
months and partitions, services, redaction, alerts, what the UI shows). It imports no domain."""
