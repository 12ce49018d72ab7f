"""Webhooks: an org's endpoints, the delivery outbox and the background sender."""
