"""Group `audit`."""
