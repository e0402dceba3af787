"""Pickup day: store staff look a code up, check ID, and mark it collected once."""
