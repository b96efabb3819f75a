"""Kafka as this project starts it: the local broker and three-node cluster assembled from Maven Central jars
(development, tests, the demo), TLS material for tests, and Kafka's own MirrorMaker 2 for a two-centre link."""
