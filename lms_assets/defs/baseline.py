"""Group `baseline`."""
