"""Tests of the Django-free ML core (training.ml): augmentation, architectures, training, evaluation."""
