"""Taking files from the intake folder: receipt, the watcher, preflight and quarantine."""
