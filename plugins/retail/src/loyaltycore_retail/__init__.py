"""The retail line (shopping malls and stores) for loyaltycore."""
