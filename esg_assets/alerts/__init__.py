"""How operations hear about a bad day: alerts delivered by PagerDuty and email."""
