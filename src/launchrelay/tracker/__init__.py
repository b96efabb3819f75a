"""The tracker: acknowledgements, deadlines and a durable ledger of every notification."""
