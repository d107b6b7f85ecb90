"""Zoo REST API (mounted under ``<WEBROOT>zoo/api/``): thin views that validate, call a service, serialize.

Every expected failure is a 4xx ``{"status": "failed", "message": ..., "code": ...}``: the services raise
``core.errors`` exceptions and ``inclinet_site.api.exception_handler`` gives each kind its status.
"""
from __future__ import annotations

from typing import Any

from django.http import FileResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import Conflict, InvalidInput, NotFound
from inclinet_site.api import validation_message

from . import selectors, tutorial
from .assignment import Task, assignment_draw_standards, assignment_next, assignment_skip
from .consensus import consensus_retire, consensus_unretire
from .export import export_job_create
from .models import REJECT_REASONS, Consensus, ExportJob, ExportStatus, Role, Standard
from .profiles import profile_get_or_create, profile_update
from .serializers import (
    ConsensusOutSerializer, DrawInSerializer, ExportInSerializer, ExportOutSerializer, FailedSerializer,
    MeasurementOutSerializer, PreferencesSerializer, PromoteInSerializer, ProposalInSerializer,
    StandardAdminOutSerializer, StandardInSerializer, StandardPatchSerializer, StandardsResponseSerializer,
    SubmitInSerializer, SubmitResponseSerializer, TaskResponseSerializer,
)
from .standards import standard_create, standard_promote, standard_propose, standard_update
from .submission import Placement, measurement_submit

FAILED = {code: FailedSerializer for code in (400, 403, 404, 409)}


class IsZooStaff(BasePermission):
    message = "Staff only."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(request.user and request.user.is_authenticated
                    and selectors.volunteer_role(user=request.user) == Role.STAFF)


class IsExpert(BasePermission):
    message = "Experts and staff only."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(request.user and request.user.is_authenticated
                    and selectors.volunteer_role(user=request.user) in (Role.EXPERT, Role.STAFF))


def _valid(serializer_class: type, data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise InvalidInput(validation_message(serializer.errors), code="invalid")
    return serializer.validated_data


def standards_payload(rows: list[selectors.StandardRow]) -> list[dict[str, Any]]:
    images = selectors.image_urls_for_galaxies(galaxy_ids=[s.galaxy_id for s in rows])
    return [{"id": s.id, "inclination": s.inclination, "scale": s.display_scale, "angle": s.display_angle,
             "images": images[s.galaxy_id]} for s in rows]


def task_payload(task: Task) -> dict[str, Any]:
    """Blind by construction: only the target's identity and images, never votes, consensus or a model answer."""
    assignment = task.assignment
    standard_rows = task.standards
    # One query for the target's name and the images of the target and its standards.
    cards = selectors.galaxy_cards(galaxy_ids=[assignment.galaxy_id, *[s.galaxy_id for s in standard_rows]])
    galaxy = cards[assignment.galaxy_id]
    return {
        "id": assignment.id,
        # A neutral name and one-off image URLs: a gold target cannot be matched to a standard shown elsewhere.
        "galaxy": {"id": galaxy.id, "name": selectors.volunteer_galaxy_label(galaxy_id=galaxy.id, name=galaxy.name),
                   "pgc": galaxy.pgc},
        "images": selectors.task_image_urls(assignment_id=assignment.id),
        "leased_until": assignment.leased_until,
        "standards": [{"id": s.id, "inclination": s.inclination, "scale": s.display_scale,
                       "angle": s.display_angle, "images": cards[s.galaxy_id].images} for s in standard_rows],
    }


class NextTaskApi(APIView):
    """The next galaxy to measure (or the one you already hold), with step 1's standards."""

    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="zoo_task_next", request=None, responses={200: TaskResponseSerializer, **FAILED})
    def post(self, request: Request) -> Response:
        task = assignment_next(user=request.user)
        return Response({"status": "success", "task": task_payload(task)})


class TaskStandardsApi(APIView):
    """Draw (or redraw) a step's standards for your task; step 2 covers the chosen 5° interval."""

    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="zoo_task_standards", request=DrawInSerializer,
                   responses={200: StandardsResponseSerializer, **FAILED})
    def post(self, request: Request, task_id: int) -> Response:
        data = _valid(DrawInSerializer, request.data)
        rows = assignment_draw_standards(user=request.user, assignment_id=task_id, step=data["step"],
                                         low=data.get("low"))
        return Response({"status": "success", "standards": standards_payload(rows)})


class SubmitApi(APIView):
    """Submit your measurement of the task's galaxy: its two neighbours, or face-on, and/or reject reasons."""

    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="zoo_task_submit", request=SubmitInSerializer,
                   responses={200: SubmitResponseSerializer, **FAILED})
    def post(self, request: Request, task_id: int) -> Response:
        data = _valid(SubmitInSerializer, request.data)
        placement = None
        if data["face_on"] or data["left_standard"] or data["right_standard"]:
            placement = Placement(left_id=data["left_standard"], right_id=data["right_standard"],
                                  step1_low=data["step1_low"], face_on=data["face_on"])
        result = measurement_submit(
            user=request.user, assignment_id=task_id, placement=placement,
            reasons=data["reasons"], note=data["note"], display_mode=data["display_mode"],
            inverted=data["inverted"], zoom=data["zoom"], angle=data["angle"], started_at=data["started_at"],
            finished_at=data["finished_at"], user_agent=request.META.get("HTTP_USER_AGENT", ""),
            shown_other_votes=data["shown_other_votes"], shown_model=data["shown_model"],
        )
        body = {"status": "success", "measurement": MeasurementOutSerializer(result.measurement).data}
        if result.feedback is not None:
            body["feedback"] = result.feedback
        return Response(body)


class SkipApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="zoo_task_skip", request=None, responses={200: None, **FAILED})
    def post(self, request: Request, task_id: int) -> Response:
        assignment_skip(user=request.user, assignment_id=task_id)
        return Response({"status": "success"})


class MyStatsApi(APIView):
    """Your counts, agreement with the settled consensus, accuracy on gold standards and calibration."""

    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="zoo_me_stats", responses={200: OpenApiResponse(description="stats"), **FAILED})
    def get(self, request: Request) -> Response:
        return Response({"status": "success", **selectors.volunteer_stats(user=request.user)})


class PreferencesApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="zoo_me_preferences_get", responses={200: PreferencesSerializer, **FAILED})
    def get(self, request: Request) -> Response:
        profile = profile_get_or_create(user=request.user)
        return Response(PreferencesSerializer(profile).data)

    @extend_schema(operation_id="zoo_me_preferences_set", request=PreferencesSerializer,
                   responses={200: PreferencesSerializer, **FAILED})
    def patch(self, request: Request) -> Response:
        data = _valid(PreferencesSerializer, request.data)
        profile = profile_update(user=request.user, **data)
        return Response(PreferencesSerializer(profile).data)


class ExportCreateApi(APIView):
    """Start an export of the consensus labels (CSV or JSON); poll the job for its download link."""

    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="zoo_export_create", request=ExportInSerializer,
                   responses={202: ExportOutSerializer, **FAILED})
    def post(self, request: Request) -> Response:
        from .export_queue import export_job_enqueue

        data = _valid(ExportInSerializer, request.data)
        job = export_job_create(user=request.user, fmt=data["format"], retired_only=data["retired_only"])
        export_job_enqueue(job)  # after commit; a broker outage fails the job and answers 503
        return Response(_export_body(request, job), status=status.HTTP_202_ACCEPTED)


def _export_body(request: Request, job: ExportJob) -> dict[str, Any]:
    from django.urls import reverse

    body = {"status": "success", **ExportOutSerializer(job).data,
            "status_url": request.build_absolute_uri(reverse("labeling:api-export", args=[job.pk]))}
    body["job_status"] = job.status
    if job.status == ExportStatus.DONE:
        body["download_url"] = request.build_absolute_uri(reverse("labeling:api-export-download", args=[job.pk]))
    return body


def _own_job(request: Request, job_id: str) -> ExportJob:
    job = ExportJob.objects.filter(pk=job_id).first()
    if job is None or (job.requested_by_id != request.user.id
                       and selectors.volunteer_role(user=request.user) != Role.STAFF):
        raise NotFound("No such export.", code="not_found")
    return job


class ExportDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="zoo_export_get", responses={200: ExportOutSerializer, **FAILED})
    def get(self, request: Request, job_id: str) -> Response:
        return Response(_export_body(request, _own_job(request, job_id)))


class ExportDownloadApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="zoo_export_download", responses={(200, "text/csv"): bytes, **FAILED})
    def get(self, request: Request, job_id: str) -> Any:
        job = _own_job(request, job_id)
        if job.status != ExportStatus.DONE or not job.file:
            raise Conflict(f"The export is {job.status}, not ready yet.", code="not_ready")
        content_type = "text/csv" if job.fmt == "csv" else "application/json"
        return FileResponse(job.file.open("rb"), as_attachment=True, filename=job.file.name.rsplit("/", 1)[-1],
                            content_type=content_type)


class StaffRetireApi(APIView):
    """Force-retire (POST) a galaxy, or unretire it (DELETE)."""

    permission_classes = [IsZooStaff]

    @extend_schema(operation_id="zoo_staff_retire", request=None, responses={200: ConsensusOutSerializer, **FAILED})
    def post(self, request: Request, galaxy_id: int) -> Response:
        consensus = consensus_retire(galaxy_id=galaxy_id, by=request.user)
        return Response({"status": "success", **ConsensusOutSerializer(consensus).data})

    @extend_schema(operation_id="zoo_staff_unretire", request=None, responses={200: ConsensusOutSerializer, **FAILED})
    def delete(self, request: Request, galaxy_id: int) -> Response:
        consensus = consensus_unretire(galaxy_id=galaxy_id, by=request.user)
        return Response({"status": "success", **ConsensusOutSerializer(consensus).data})


class StaffConsensusApi(APIView):
    permission_classes = [IsZooStaff]

    @extend_schema(operation_id="zoo_staff_consensus", responses={200: ConsensusOutSerializer, **FAILED})
    def get(self, request: Request, galaxy_id: int) -> Response:
        consensus = Consensus.objects.filter(galaxy_id=galaxy_id).first()
        if consensus is None:
            raise NotFound("Not in the queue.", code="not_found")
        return Response({"status": "success", **ConsensusOutSerializer(consensus).data})


class StaffStandardsApi(APIView):
    permission_classes = [IsZooStaff]

    @extend_schema(operation_id="zoo_staff_standards_list", responses={200: StandardAdminOutSerializer(many=True), **FAILED})
    def get(self, request: Request) -> Response:
        rows = Standard.objects.order_by("inclination", "id")
        return Response({"status": "success", "standards": StandardAdminOutSerializer(rows, many=True).data})

    @extend_schema(operation_id="zoo_staff_standards_create", request=StandardInSerializer,
                   responses={201: StandardAdminOutSerializer, **FAILED})
    def post(self, request: Request) -> Response:
        data = _valid(StandardInSerializer, request.data)
        standard = standard_create(chosen_by=[request.user], **data)
        return Response({"status": "success", **StandardAdminOutSerializer(standard).data},
                        status=status.HTTP_201_CREATED)


class StaffStandardDetailApi(APIView):
    permission_classes = [IsZooStaff]

    @extend_schema(operation_id="zoo_staff_standards_update", request=StandardPatchSerializer,
                   responses={200: StandardAdminOutSerializer, **FAILED})
    def patch(self, request: Request, standard_id: int) -> Response:
        data = _valid(StandardPatchSerializer, request.data)
        standard = standard_update(standard_id=standard_id, **data)
        return Response({"status": "success", **StandardAdminOutSerializer(standard).data})


class StaffStandardPromoteApi(APIView):
    """Promote a settled galaxy to a standard: three measurements within 3° make it one, at their median."""

    permission_classes = [IsZooStaff]

    @extend_schema(operation_id="zoo_staff_standards_promote", request=PromoteInSerializer,
                   responses={201: StandardAdminOutSerializer, **FAILED})
    def post(self, request: Request) -> Response:
        data = _valid(PromoteInSerializer, request.data)
        standard = standard_promote(galaxy_id=data["galaxy_id"], by=request.user)
        return Response({"status": "success", **StandardAdminOutSerializer(standard).data},
                        status=status.HTTP_201_CREATED)


class StaffStandardCoverageApi(APIView):
    """Standards per degree over 45–90°, the degrees with fewer than three, and the galaxies that may be promoted."""

    permission_classes = [IsZooStaff]

    @extend_schema(operation_id="zoo_staff_standards_coverage",
                   responses={200: OpenApiResponse(description="coverage and candidates"), **FAILED})
    def get(self, request: Request) -> Response:
        return Response({"status": "success", "coverage": selectors.standard_coverage(),
                         "candidates": selectors.promotion_candidates()})


class StandardProposalApi(APIView):
    """An expert's measurement of a candidate standard; three within 3° adopt the median."""

    permission_classes = [IsExpert]

    @extend_schema(operation_id="zoo_standard_propose", request=ProposalInSerializer, responses={200: None, **FAILED})
    def post(self, request: Request) -> Response:
        data = _valid(ProposalInSerializer, request.data)
        standard = standard_propose(expert=request.user, **data)
        return Response({"status": "success", "adopted": standard is not None,
                         "standard": StandardAdminOutSerializer(standard).data if standard else None})


class StaffReportApi(APIView):
    permission_classes = [IsZooStaff]

    @extend_schema(operation_id="zoo_staff_report", responses={200: OpenApiResponse(description="report"), **FAILED})
    def get(self, request: Request) -> Response:
        raw_seed = request.query_params.get("seed", "0") or "0"
        if not (raw_seed.isascii() and raw_seed.isdigit() and len(raw_seed) <= 18):
            raise InvalidInput("seed must be a whole number of at most 18 digits.", code="invalid")
        seed = int(raw_seed)
        report = selectors.agreement_ab_report(seed=seed)
        return Response({"status": "success", "agreement": report.as_dict(),
                         "progress": selectors.progress_summary(),
                         "gold_accuracy": selectors.volunteer_gold_accuracy()})


TUTORIAL_SESSION_KEY = "zoo_tutorial"


class TutorialCheckInSerializer(serializers.Serializer):
    question = serializers.IntegerField(min_value=0, help_text="The question's index")
    left_standard = serializers.IntegerField(required=False, allow_null=True, default=None)
    right_standard = serializers.IntegerField(required=False, allow_null=True, default=None)
    face_on = serializers.BooleanField(required=False, default=False)
    reasons = serializers.ListField(child=serializers.CharField(max_length=32), required=False, default=list,
                                    max_length=len(REJECT_REASONS))


def _tutorial_state(request: Request, *, restart: bool = False) -> dict[str, Any]:
    state = request.session.get(TUTORIAL_SESSION_KEY)
    if restart or not isinstance(state, dict) or "questions" not in state:
        state = tutorial.tutorial_new()
        request.session[TUTORIAL_SESSION_KEY] = state
    return state


def _tutorial_body(request: Request, state: dict[str, Any]) -> dict[str, Any]:
    rows = tutorial.tutorial_standards(state=state, step=1, low=None)
    complete = len(state["answers"]) == len(state["questions"])
    return {"status": "success", "questions": tutorial.tutorial_questions(state=state),
            "standards": standards_payload(rows), "threshold": tutorial.PASS_MEDIAN_ERROR_DEG,
            "summary": tutorial.tutorial_summary(state=state) if complete else None}


class TutorialApi(APIView):
    """Your tutorial quiz (GET; made on first use), a fresh one (POST), or standards for a step
    (``GET ?step=1`` or ``?step=2&low=45..85``). Answers are never sent before they are given."""

    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="zoo_tutorial", responses={200: OpenApiResponse(description="quiz"), **FAILED})
    def get(self, request: Request) -> Response:
        state = _tutorial_state(request)
        step = request.query_params.get("step")
        if step in ("1", "2"):
            low = request.query_params.get("low")
            if step == "2" and not (low or "").isdigit():
                raise InvalidInput("Give low: 45, 50, ... 85.", code="invalid")
            rows = tutorial.tutorial_standards(state=state, step=int(step),
                                               low=int(low) if step == "2" else None)
            return Response({"status": "success", "standards": standards_payload(rows)})
        if step is not None:
            raise InvalidInput("step must be 1 or 2.", code="invalid")
        return Response(_tutorial_body(request, state))

    @extend_schema(operation_id="zoo_tutorial_restart", request=None,
                   responses={200: OpenApiResponse(description="a fresh quiz"), **FAILED})
    def post(self, request: Request) -> Response:
        return Response(_tutorial_body(request, _tutorial_state(request, restart=True)))


class TutorialCheckApi(APIView):
    """Answer one tutorial question; the last answer records the result (passed or not) on your profile."""

    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="zoo_tutorial_check", request=TutorialCheckInSerializer,
                   responses={200: OpenApiResponse(description="feedback, and the summary after the last"),
                              **FAILED})
    def post(self, request: Request) -> Response:
        data = _valid(TutorialCheckInSerializer, request.data)
        state = request.session.get(TUTORIAL_SESSION_KEY)
        if not isinstance(state, dict) or "questions" not in state:
            raise Conflict("Start the tutorial first.", code="tutorial_conflict")
        feedback, summary = tutorial.tutorial_answer(
            user=request.user, state=state, index=data["question"],
            left_id=data["left_standard"], right_id=data["right_standard"], face_on=data["face_on"],
            reasons=data["reasons"])
        request.session[TUTORIAL_SESSION_KEY] = state
        return Response({"status": "success", "feedback": feedback, "answered": len(state["answers"]),
                         "total": len(state["questions"]), "summary": summary})
