"""Persistent browser sessions (`pbs_`): the state machine (lifecycle) and what the API does (service)."""
