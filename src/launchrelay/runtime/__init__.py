"""What the relay and the tracker processes share: logging, the /metrics /healthz /readyz endpoint,
the watch over their input partitions, and start-up with signals. Plumbing below the services."""
