"""Side-by-side benchmarks of azrestore against its peers (`python -m benchmarks.run`)."""
