"""Launch set-up and operation: launches, stores, SKUs, allocations, registrations."""
