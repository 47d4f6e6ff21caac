"""coach: a live voice coach for phone agents."""
