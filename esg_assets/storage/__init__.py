"""Where the day's files are published: one interface, a backend per ESG_OUTPUT_URI scheme."""
