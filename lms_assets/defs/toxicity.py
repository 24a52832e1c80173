"""Group `toxicity`."""
