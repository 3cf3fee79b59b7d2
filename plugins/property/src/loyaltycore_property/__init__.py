"""The property line (home sales) for loyaltycore."""
