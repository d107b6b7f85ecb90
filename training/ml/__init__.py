"""Django-free ML core: synthetic galaxies, augmentation, architectures, training loop, evaluation."""
