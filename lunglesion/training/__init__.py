"""Training machinery shared by every network: checkpoints, logs, curves, the supervised loop."""
