"""Sample plugins for the tests, registered programmatically (never via entry points)."""
