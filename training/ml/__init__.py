"""Django-free ML core: augmentation, architectures, training loop, evaluation (the galaxies it trains on come
from ``core.synthetic``)."""
