"""Zoo routes, mounted at ``<WEBROOT>zoo/``: pages, and the REST API under ``zoo/api/``."""
from django.urls import path

from . import api, staff_pages, task_images, views

app_name = "labeling"

urlpatterns = [
    path("", views.measure, name="measure"),
    path("tutorial/", views.tutorial, name="tutorial"),
    path("me/", views.my_measurements, name="me"),
    path("guide/", views.field_guide, name="guide"),
    path("guide/<slug:name>.png", views.guide_example, name="guide-example"),
    path("staff/report/", views.staff_report, name="report"),
    path("staff/report.png", views.staff_report_png, name="report-png"),
    path("staff/ingest/", staff_pages.staff_ingest, name="staff-ingest"),
    path("staff/standards/", staff_pages.staff_standards, name="staff-standards"),
    path("signup/", views.signup, name="signup"),
    path("login/", views.ZooLoginView.as_view(), name="login"),
    path("logout/", views.ZooLogoutView.as_view(), name="logout"),
    path("img/<int:image_id>", views.image, name="image"),
    path("task/<int:task_id>/img/<str:kind>/<str:token>", task_images.task_image, name="task-image"),
    # API
    path("api/tasks/next", api.NextTaskApi.as_view(), name="api-next"),
    path("api/tasks/<int:task_id>/standards", api.TaskStandardsApi.as_view(), name="api-standards"),
    path("api/tasks/<int:task_id>/submit", api.SubmitApi.as_view(), name="api-submit"),
    path("api/tasks/<int:task_id>/skip", api.SkipApi.as_view(), name="api-skip"),
    path("api/me/stats", api.MyStatsApi.as_view(), name="api-stats"),
    path("api/me/preferences", api.PreferencesApi.as_view(), name="api-preferences"),
    path("api/exports", api.ExportCreateApi.as_view(), name="api-exports"),
    path("api/exports/<uuid:job_id>", api.ExportDetailApi.as_view(), name="api-export"),
    path("api/exports/<uuid:job_id>/download", api.ExportDownloadApi.as_view(), name="api-export-download"),
    path("api/tutorial", api.TutorialApi.as_view(), name="api-tutorial"),
    path("api/tutorial/check", api.TutorialCheckApi.as_view(), name="api-tutorial-check"),
    path("api/standards/proposals", api.StandardProposalApi.as_view(), name="api-proposals"),
    path("api/staff/galaxies/<int:galaxy_id>/retire", api.StaffRetireApi.as_view(), name="api-retire"),
    path("api/staff/galaxies/<int:galaxy_id>", api.StaffConsensusApi.as_view(), name="api-consensus"),
    path("api/staff/standards", api.StaffStandardsApi.as_view(), name="api-staff-standards"),
    path("api/staff/standards/<int:standard_id>", api.StaffStandardDetailApi.as_view(), name="api-staff-standard"),
    path("api/staff/standards/promote", api.StaffStandardPromoteApi.as_view(), name="api-staff-standard-promote"),
    path("api/staff/standards/coverage", api.StaffStandardCoverageApi.as_view(), name="api-staff-standard-coverage"),
    path("api/staff/report", api.StaffReportApi.as_view(), name="api-report"),
]
