"""The staff "Retrain" form: snapshot (new or existing), members, epochs, queue."""
from __future__ import annotations

from django import forms
from django.conf import settings

from .models import DatasetSnapshot

FLAVOURS = [("0", "0 (all training galaxies)"), ("1", "1 (⅔ subset)"), ("2", "2 (⅔ subset)"), ("3", "3 (⅔ subset)")]


def _profiles() -> list[tuple[str, str]]:
    from training.ml.pipeline import PROFILES  # imports TensorFlow: only when a form is rendered

    return [(name, name) for name in PROFILES]


def _architectures() -> list[tuple[str, str]]:
    from training.ml.architectures import ARCHITECTURES

    return [(name, name) for name in ARCHITECTURES]


class RetrainForm(forms.Form):
    snapshot = forms.ChoiceField(help_text="freeze the current consensus, or reuse a snapshot")
    synthetic = forms.IntegerField(min_value=0, max_value=50_000, initial=0, required=False,
                                   help_text="synthetic galaxies added to a new snapshot")
    profile = forms.ChoiceField(choices=_profiles, initial="quick",
                                help_text="defaults for epochs and images per epoch")
    architectures = forms.MultipleChoiceField(choices=_architectures, initial=["compact"],
                                              widget=forms.CheckboxSelectMultiple)
    flavours = forms.MultipleChoiceField(choices=FLAVOURS, initial=["0", "1", "2", "3"],
                                         widget=forms.CheckboxSelectMultiple)
    reject_architectures = forms.MultipleChoiceField(choices=_architectures, initial=["compact"], required=False,
                                                     widget=forms.CheckboxSelectMultiple)
    epochs = forms.IntegerField(min_value=1, max_value=1000, required=False, help_text="blank: the profile's")
    steps_per_epoch = forms.IntegerField(min_value=1, max_value=100_000, required=False,
                                         help_text="blank: images per epoch ÷ batch size")
    batch_size = forms.IntegerField(min_value=1, max_value=1024, required=False)
    queue = forms.ChoiceField(initial="train")
    promote = forms.BooleanField(required=False, help_text="promote the candidate when evaluation succeeds")

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        snapshots = DatasetSnapshot.objects.order_by("-pk")[:50]
        self.fields["snapshot"].choices = [("new", "New snapshot from the current consensus")] + [
            (str(s.pk), f"{s.name} ({s.n_train} train / {s.n_val} val / {s.n_test} test)") for s in snapshots]
        queues = settings.CELERY_TASK_QUEUES_NAMES
        self.fields["queue"].choices = [(q, q) for q in queues]

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        return {
            "snapshot_id": None if data["snapshot"] == "new" else int(data["snapshot"]),
            "synthetic": data.get("synthetic") or 0, "profile": data["profile"],
            "architectures": list(data["architectures"]), "flavours": [int(f) for f in data["flavours"]],
            "reject_architectures": list(data.get("reject_architectures") or []), "epochs": data.get("epochs"),
            "steps_per_epoch": data.get("steps_per_epoch"), "batch_size": data.get("batch_size"),
            "queue": data["queue"], "promote": bool(data.get("promote")),
        }
