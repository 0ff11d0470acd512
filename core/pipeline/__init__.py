"""rigcast."""
