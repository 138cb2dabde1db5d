"""A loopback sandbox that serves the firm's auth, AMS and ESG contract with seeded synthetic data."""
