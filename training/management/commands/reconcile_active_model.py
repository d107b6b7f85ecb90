"""Make ``MODEL_STORE/active.json`` agree with the database's active ensemble (the database wins), and say
what was put right. Run at start-up by ``scripts/run.sh`` and docker compose's ``init`` service.

    manage.py reconcile_active_model
"""
from django.core.management.base import BaseCommand

from training.registry import ensemble_pointer_reconcile


class Command(BaseCommand):
    help = "Rewrite (or remove) active.json so that it names the database's active ensemble."

    def handle(self, *args: object, **options: object) -> None:
        fixed = ensemble_pointer_reconcile()
        self.stdout.write(f"Model pointer reconciled: {fixed}" if fixed else "Model pointer agrees with the database.")
