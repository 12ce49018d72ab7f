"""The browser app at `/`: static files (no build step) and the router that serves them."""
