"""The hotel line for loyaltycore."""
