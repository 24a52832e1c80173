"""Group `survival`."""
