"""Group `response`."""
