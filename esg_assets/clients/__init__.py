"""Clients of the firm's HTTP interfaces: OAuth2 tokens, the Account Management System and the ESG API."""
