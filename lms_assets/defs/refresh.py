"""Group `refresh`."""
