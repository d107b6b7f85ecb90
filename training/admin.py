"""Django admin for training: snapshots, retrain jobs, runs, ensembles (with promote and roll back actions)."""
from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import DatasetSnapshot, Ensemble, ModelVersion, RetrainJob, TrainingRun
from .registry import RegistryError, ensemble_activate, ensemble_rollback_and_rescore


@admin.register(DatasetSnapshot)
class DatasetSnapshotAdmin(admin.ModelAdmin):
    list_display = ("name", "n_train", "n_val", "n_test", "content_hash", "created_at")
    readonly_fields = ("content_hash", "path", "description")


@admin.register(RetrainJob)
class RetrainJobAdmin(admin.ModelAdmin):
    list_display = ("pk", "kind", "status", "stage", "snapshot", "ensemble", "queue", "promote", "created_at")
    list_filter = ("kind", "status")


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ("pk", "name", "architecture", "flavour", "kind", "status", "epoch", "step", "total_steps",
                    "worker", "heartbeat_at")
    list_filter = ("status", "kind")


class ModelVersionInline(admin.TabularInline):
    model = ModelVersion
    extra = 0
    fields = ("name", "architecture", "flavour", "kind", "status", "weights", "run")
    readonly_fields = fields


@admin.register(Ensemble)
class EnsembleAdmin(admin.ModelAdmin):
    list_display = ("version", "status", "snapshot", "created_at", "promoted_at")
    list_filter = ("status",)
    inlines = [ModelVersionInline]
    actions = ["promote", "rollback"]

    @admin.action(description="Promote the selected ensemble (exactly one)")
    def promote(self, request: HttpRequest, queryset: QuerySet[Ensemble]) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one ensemble to promote.", messages.ERROR)
            return
        ensemble = ensemble_activate(ensemble=queryset.get())
        self.message_user(request, f"{ensemble.version} is now active; the catalogue is being re-scored.")

    @admin.action(description="Roll back to the previously active ensemble")
    def rollback(self, request: HttpRequest, queryset: QuerySet[Ensemble]) -> None:
        try:
            restored = ensemble_rollback_and_rescore()
        except RegistryError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(request, f"Rolled back to {restored.version}.")
