"""Catalogue API: resolve a PGC number, a name or a sky position to a target."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from core.errors import InvalidInput, NotFound, Unavailable
from inclinet_site.security import SignedInUserRateThrottle

from .coordinates import CoordinateError
from .selectors import GalaxyNotFound, NameResolversUnreachable, Target, target_resolve, target_resolve_position
from .services import galaxy_get_or_fetch_by_pgc
from .serializers import FailedSerializer, ResolveQuerySerializer, TargetSerializer


def _target_response(target: Target) -> Response:
    data = TargetSerializer(target).data
    data["status"] = "success"
    return Response(data)


class GalaxyByPgcView(APIView):
    throttle_classes = [AnonRateThrottle, SignedInUserRateThrottle]
    error_codes_in_body = False  # these failures never carried a ``code`` (inclinet_site.api.exception_handler)

    @extend_schema(
        operation_id="catalog_galaxy_by_pgc",
        responses={200: TargetSerializer, 404: FailedSerializer, 429: FailedSerializer, 503: FailedSerializer},
        parameters=[OpenApiParameter("pgc", int, OpenApiParameter.PATH, examples=[OpenApiExample("M33", value=5818)])],
    )
    def get(self, request: Request, pgc: int) -> Response:
        try:
            # The local catalogue, else HyperLEDA (stored for next time).
            return _target_response(Target.from_galaxy(galaxy_get_or_fetch_by_pgc(pgc=pgc)))
        except NameResolversUnreachable as exc:
            raise Unavailable(str(exc)) from None
        except GalaxyNotFound as exc:
            raise NotFound(str(exc)) from None


class ResolveView(APIView):
    # Each name may cost a Sesame and a NED call: anonymous use is rate-limited like the prediction API.
    throttle_classes = [AnonRateThrottle, SignedInUserRateThrottle]
    error_codes_in_body = False

    @extend_schema(
        operation_id="catalog_resolve",
        parameters=[ResolveQuerySerializer],
        responses={200: TargetSerializer, 400: FailedSerializer, 404: FailedSerializer, 429: FailedSerializer,
                   503: FailedSerializer},
        examples=[OpenApiExample("By name", value={"q": "M33"}), OpenApiExample("By position", value={"q": "10h42m +41d16m"})],
    )
    def get(self, request: Request) -> Response:
        query = ResolveQuerySerializer(data=request.query_params)
        if not query.is_valid():
            raise InvalidInput("Give a query 'q' of at most 128 characters.")
        text, fov = query.validated_data["q"], query.validated_data.get("fov")
        try:
            if fov:
                return _target_response(target_resolve_position(position=text, field=fov))
            if text.strip().isascii() and text.strip().isdigit():
                return _target_response(Target.from_galaxy(galaxy_get_or_fetch_by_pgc(pgc=int(text.strip()))))
            return _target_response(target_resolve(query=text))
        except CoordinateError as exc:
            raise InvalidInput(str(exc)) from None
        except NameResolversUnreachable as exc:
            raise Unavailable(str(exc)) from None
        except GalaxyNotFound as exc:
            raise NotFound(str(exc)) from None
