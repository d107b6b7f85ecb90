"""Static files storage for DEBUG off: whitenoise's compressed, content-hashed copies from ``collectstatic``."""
import logging

from whitenoise.storage import CompressedManifestStaticFilesStorage

logger = logging.getLogger(__name__)


class StaticStorage(CompressedManifestStaticFilesStorage):
    """A page never fails over a static link: a file missing from the manifest is linked unhashed and logged.

    Django's manifest storage raises inside ``{% static %}`` instead, so one stale ``collectstatic`` would
    turn every page into a 500. ``collectstatic`` itself stays strict (a CSS ``url()`` to a missing file
    still fails it): only ``url()``, which pages call, falls back.
    """

    def stored_name(self, name: str) -> str:
        try:
            return super().stored_name(name)
        except ValueError:
            logger.error("Static file %r is not in the collectstatic manifest; run manage.py collectstatic", name)
            return name
