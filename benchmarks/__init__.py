"""Speed and accuracy benchmarks; each script runs with one command and prints its figures."""
