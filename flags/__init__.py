"""Flagged predictions: the durable local store (`flags.store`) and its sync to a Hub dataset (`flags.sync`)."""
