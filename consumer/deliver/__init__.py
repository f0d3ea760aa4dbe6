"""Delivery at the edge: Slack incoming webhooks."""
