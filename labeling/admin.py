"""Admin views of the Zoo's tables (measurements are read-only: they are append-only by design)."""
from django.contrib import admin

from .models import (
    Assignment, Consensus, ExportJob, Measurement, Standard, StandardProposal, VolunteerCalibration, VolunteerProfile,
)


@admin.register(VolunteerProfile)
class VolunteerProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "role", "display_mode", "tutorial_done", "tasks_served")
    list_filter = ("role",)


@admin.register(Standard)
class StandardAdmin(admin.ModelAdmin):
    list_display = ("galaxy", "inclination", "morphology", "method", "active")
    list_filter = ("active", "method")
    raw_id_fields = ("galaxy",)


admin.site.register(StandardProposal)


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("user", "galaxy", "status", "is_gold", "queue", "leased_until")
    list_filter = ("status", "is_gold", "queue")
    raw_id_fields = ("galaxy", "user")


@admin.register(Measurement)
class MeasurementAdmin(admin.ModelAdmin):
    list_display = ("user", "galaxy", "inclination", "face_on", "rejected", "is_gold", "counted", "created_at")
    list_filter = ("is_gold", "counted", "rejected", "face_on")
    raw_id_fields = ("galaxy", "user", "assignment", "left_standard", "right_standard")

    def has_change_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False


@admin.register(Consensus)
class ConsensusAdmin(admin.ModelAdmin):
    list_display = ("galaxy", "status", "inc", "inc_e", "n_votes", "retired", "retire_reason")
    list_filter = ("retired", "status", "retire_reason")
    raw_id_fields = ("galaxy", "retired_by")


admin.site.register(VolunteerCalibration)
admin.site.register(ExportJob)
