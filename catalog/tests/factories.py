"""factory_boy factories for catalogue models, shared by every app's tests."""
import factory

from catalog.models import Galaxy, GalaxyAlias, GalaxySource
from catalog.names import normalise_name


class GalaxyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Galaxy

    pgc = factory.Sequence(lambda n: 9_000_000 + n)
    name = factory.LazyAttribute(lambda o: f"PGC{o.pgc}" if o.pgc else "SYN-000001")
    name_key = factory.LazyAttribute(lambda o: normalise_name(o.name))
    ra = factory.Faker("pyfloat", min_value=0, max_value=359.9)
    dec = factory.Faker("pyfloat", min_value=-89, max_value=89)
    d25_arcmin = 2.0
    pa = 45.0
    source = GalaxySource.LEDA


class GalaxyAliasFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GalaxyAlias

    galaxy = factory.SubFactory(GalaxyFactory)
    name = "Some Name"
    key = factory.LazyAttribute(lambda o: normalise_name(o.name))
