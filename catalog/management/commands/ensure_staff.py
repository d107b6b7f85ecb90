"""Create the staff account for a local installation (idempotent) and say how to log in."""
import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create or keep the local staff account; the password comes from STAFF_PASSWORD or var/staff-password.txt."

    def handle(self, *args: object, **options: object) -> None:
        username = os.environ.get("STAFF_USERNAME", "staff")
        password_file = settings.VAR_DIR / "staff-password.txt"
        password = os.environ.get("STAFF_PASSWORD") or (
            password_file.read_text().strip() if password_file.exists() else secrets.token_urlsafe(12)
        )
        user, created = get_user_model().objects.get_or_create(username=username, defaults={"is_staff": True, "is_superuser": True})
        if created or not user.check_password(password):
            user.set_password(password)
            user.is_staff = user.is_superuser = True
            user.save()
        if not os.environ.get("STAFF_PASSWORD"):
            password_file.parent.mkdir(parents=True, exist_ok=True)
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
        self.stdout.write(f"Staff login: username '{username}', password '{password}' (stored in {password_file})")
