"""factory_boy factories for the Zoo: volunteers, standards (with tiny images), queued targets, measurements."""
from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from catalog.tests.factories import GalaxyFactory
from labeling.models import Assignment, Consensus, Measurement, Standard, VolunteerProfile
from labeling.synthetic import MORPHOLOGIES, synthetic_galaxy


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"volunteer{n}")
    password = factory.PostGenerationMethodCall("set_password", "pw-zoo-123")

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):  # noqa: ANN001, N805
        if create:
            obj.save()


class ProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = VolunteerProfile
        django_get_or_create = ("user",)

    user = factory.SubFactory(UserFactory)
    role = "volunteer"


class ImagedGalaxyFactory(factory.Factory):
    """A synthetic galaxy with generated PNGs (tiny by default, so tests stay fast)."""

    class Meta:
        model = dict  # built through synthetic_galaxy, see _create

    name = factory.Sequence(lambda n: f"SYN-ZOO-{n:06d}")
    inclination = 60.0
    seed = factory.Sequence(lambda n: n)
    morphology = "Sb"
    bands = ("colour",)
    size = 16

    @classmethod
    def _create(cls, model_class, **kwargs):  # noqa: ANN001, ANN206
        return synthetic_galaxy(**kwargs)

    _build = _create


class StandardFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Standard

    inclination = 60.0
    morphology = factory.Sequence(lambda n: MORPHOLOGIES[n % len(MORPHOLOGIES)])
    galaxy = factory.LazyAttribute(lambda o: ImagedGalaxyFactory(inclination=o.inclination, morphology=o.morphology))


class ConsensusFactory(factory.django.DjangoModelFactory):
    """A galaxy in the volunteers' queue."""

    class Meta:
        model = Consensus

    galaxy = factory.SubFactory(GalaxyFactory)


class AssignmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Assignment

    user = factory.SubFactory(UserFactory)
    galaxy = factory.SubFactory(GalaxyFactory)
    leased_until = factory.Faker("future_datetime", end_date="+5m", tzinfo=__import__("datetime").timezone.utc)


class MeasurementFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Measurement

    user = factory.SubFactory(UserFactory)
    galaxy = factory.SubFactory(GalaxyFactory)
    inclination_raw = 60.5
    inclination = 60


def standard_grid(*, per_value: int = 1, low: int = 40, high: int = 90, size: int = 16) -> list[Standard]:
    """Standards at every integer inclination in [low, high], ``per_value`` morphologies each."""
    return [StandardFactory(inclination=float(v), galaxy=ImagedGalaxyFactory(inclination=v, size=size,
                                                                              morphology=MORPHOLOGIES[k % 4]))
            for v in range(low, high + 1) for k in range(per_value)]
