"""Training domain: datasets, training runs, the model registry and staff retraining pages."""
