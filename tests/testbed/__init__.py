"""Real components for the integration tests: simulated nodes, and what runs on them."""
