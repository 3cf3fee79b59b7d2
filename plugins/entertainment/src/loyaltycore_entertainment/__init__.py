"""The entertainment line (cinemas, parks and venues) for loyaltycore."""
