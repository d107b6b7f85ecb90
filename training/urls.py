"""Routes of the staff retraining pages (mounted at ``staff/training/``)."""
from django.urls import path

from . import api, views

app_name = "training"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("api/jobs", api.JobsView.as_view(), name="api-jobs"),
    path("api/runs/<int:run_id>", api.RunView.as_view(), name="api-run"),
    path("runs/<int:run_id>/", views.run_detail, name="run"),
    path("ensembles/", views.ensembles, name="ensembles"),
    path("ensembles/rollback", views.ensemble_rollback_view, name="rollback"),
    path("ensembles/<int:ensemble_id>/", views.ensemble_detail, name="ensemble"),
    path("ensembles/<int:ensemble_id>/promote", views.ensemble_promote_view, name="promote"),
    path("ensembles/<int:ensemble_id>/plots/<str:name>", views.ensemble_plot, name="ensemble-plot"),
]
