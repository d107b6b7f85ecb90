"""Ensemble inference service, the astronomer page, the REST API and batch prediction jobs."""
