"""Celery tasks of the training app: thin wrappers around the ML pipeline and the registry."""
from celery import shared_task
from django.core.management import call_command


@shared_task(name="training.tasks.build_ensemble", acks_late=True, reject_on_worker_lost=True)
def build_ensemble(profile: str = "quick", promote: bool = True, if_none_active: bool = True) -> str:
    """Build (or resume building) an ensemble; checkpoints make a redelivered task continue, not restart."""
    call_command("build_ensemble", profile=profile, promote=promote, if_none_active=if_none_active)
    return profile
