"""Deliver a built issue: the message, the ledger, the sender, dry runs and test sends."""
