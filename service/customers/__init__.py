"""One customer's whole story across launches and channels (agents, self-service)."""
