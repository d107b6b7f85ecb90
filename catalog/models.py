"""Catalogue models: a galaxy, its alternative names, and the images cached for it."""
from __future__ import annotations

from django.db import models

from core.geometry import inclination_from_axial_ratio


class GalaxySource(models.TextChoices):
    OPENNGC = "openngc", "OpenNGC catalogue"
    LEDA = "leda", "HyperLEDA-style CSV"
    HYPERLEDA = "hyperleda", "HyperLEDA (asked on demand)"
    UPLOAD = "upload", "Uploaded image"
    SYNTHETIC = "synthetic", "Synthetic (generated)"
    MANUAL = "manual", "Entered by staff"


class Galaxy(models.Model):
    """A galaxy. ``pgc`` is null for objects without a PGC number (uploads, synthetic galaxies)."""

    pgc = models.PositiveBigIntegerField(unique=True, null=True, blank=True)
    name = models.CharField(max_length=128, help_text="Primary designation, e.g. NGC0598")
    name_key = models.CharField(max_length=128, db_index=True, editable=False)
    ra = models.FloatField(help_text="J2000 right ascension, degrees")
    dec = models.FloatField(help_text="J2000 declination, degrees")
    d25_arcmin = models.FloatField(null=True, blank=True, help_text="Major-axis diameter D25, arcmin")
    pa = models.FloatField(null=True, blank=True, help_text="Position angle of the major axis, degrees E of N")
    morph_type = models.CharField(max_length=32, blank=True, default="")
    # HyperLEDA's axis ratio and inclination, when the galaxy came from HyperLEDA (catalog.resolvers).
    logr25 = models.FloatField(null=True, blank=True, help_text="log10 of the axis ratio a/b at the 25 mag isophote")
    leda_inclination = models.FloatField(null=True, blank=True, help_text="HyperLEDA's incl, degrees")
    leda_inclination_error = models.FloatField(null=True, blank=True, help_text="HyperLEDA's e_incl, degrees")
    source = models.CharField(max_length=16, choices=GalaxySource.choices)
    # Truth for synthetic galaxies (inclination, reason, ...); empty for real ones.
    truth = models.JSONField(default=dict, blank=True)
    # Written by prediction tasks (ensemble spread); read by labeling to steer assignment.
    labeling_priority = models.FloatField(default=0.0, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "galaxies"
        indexes = [models.Index(fields=["dec", "ra"], name="galaxy_dec_ra")]
        constraints = [
            models.CheckConstraint(condition=models.Q(ra__gte=0, ra__lt=360), name="galaxy_ra_range"),
            models.CheckConstraint(condition=models.Q(dec__gte=-90, dec__lte=90), name="galaxy_dec_range"),
        ]

    def __str__(self) -> str:
        return f"{self.name} (PGC {self.pgc})" if self.pgc else self.name

    @property
    def logd25(self) -> float | None:
        """HyperLEDA's log10 of D25 in units of 0.1 arcmin."""
        import math

        return math.log10(self.d25_arcmin * 10) if self.d25_arcmin else None

    @property
    def catalogue_inclination(self) -> float | None:
        """The catalogue's axis-ratio inclination, degrees: HyperLEDA's ``incl`` when known, else from ``logr25``
        with Holmberg's q0 (``core.geometry.inclination_from_axial_ratio``); None when neither is known."""
        if self.leda_inclination is not None:
            return float(self.leda_inclination)
        if self.logr25 is None:
            return None
        return inclination_from_axial_ratio(10 ** -float(self.logr25))

    @property
    def fov_arcmin(self) -> float:
        """Cut-out field as in the original: 1.5 × D25 (2 arcmin when D25 is unknown)."""
        return 1.5 * (self.d25_arcmin or 2.0 / 1.5)


class GalaxyAlias(models.Model):
    """Another designation of a galaxy (Messier, NGC, IC, UGC, PGC, common name)."""

    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="aliases")
    name = models.CharField(max_length=128)
    key = models.CharField(max_length=128, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["galaxy", "key"], name="alias_unique_per_galaxy")]
        verbose_name_plural = "galaxy aliases"

    def __str__(self) -> str:
        return self.name


class ImageKind(models.TextChoices):
    COLOUR = "colour", "Colour composite"
    G = "g", "g band"
    R = "r", "r band"
    I = "i", "i band"  # noqa: E741 - the SDSS band is called i


class GalaxyImage(models.Model):
    """A cached image of a galaxy from one source (SDSS, Legacy Survey, upload, synthetic)."""

    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="images")
    kind = models.CharField(max_length=8, choices=ImageKind.choices, default=ImageKind.COLOUR)
    source = models.CharField(max_length=32)
    file = models.FileField(upload_to="galaxy_images/%Y/%m/")
    sha256 = models.CharField(max_length=64, db_index=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    fov_arcmin = models.FloatField(null=True, blank=True)
    # Degrees the image was rotated by so that the major axis lies horizontal (PA + 90 in the original).
    rotation_deg = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["galaxy", "kind", "source"], name="one_image_per_kind_and_source")
        ]

    def __str__(self) -> str:
        return f"{self.galaxy} [{self.kind}, {self.source}]"
