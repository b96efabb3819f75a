"""Benchmarks of launchrelay against its stack's limits and a peer implementation (`make bench`)."""
