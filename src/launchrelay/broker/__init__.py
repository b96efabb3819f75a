"""Kafka at the edges: a local broker built from Maven Central jars, and topic admin."""
