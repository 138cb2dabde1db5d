"""Command line tools: esg-report."""
