"""Kafka as every deployment talks to it: producing in transactions, consuming, topic admin, ACLs and quotas."""
