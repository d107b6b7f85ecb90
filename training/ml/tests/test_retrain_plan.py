"""Retrain plans follow their profile's recipe: schedule, augmentation and rate per architecture."""
import pytest

from training.ml.pipeline import PROFILES
from training.ml.retrain import MemberPlan, plan_members


def test_quick_plans_carry_the_profile_recipe_and_read_back_from_json() -> None:
    plans = plan_members(profile="quick")
    quick = PROFILES["quick"]
    assert [p.name for p in plans] == ["compact", "compact1", "compact2", "compact3", "compact-binary"]
    for plan in plans:
        assert plan.lr_schedule == quick.lr_schedule == "cosine" and plan.learning_rate == quick.learning_rate
        assert plan.augment == (quick.augment if plan.kind == "regression" else quick.reject_augment)
        assert MemberPlan.from_json(plan.to_json()) == plan
    # A run config stored before these settings existed still reads back, with the old defaults.
    old = {k: v for k, v in plans[0].to_json().items() if k not in ("lr_schedule", "learning_rate", "patience", "augment")}
    restored = MemberPlan.from_json(old)
    assert restored.lr_schedule == "constant" and restored.augment == {} and restored.name == "compact"


def test_architectures_outside_the_profile_get_the_original_rate() -> None:
    plans = plan_members(profile="quick", architectures=["model4"], flavours=[0], reject_architectures=["compact"])
    rates = {p.name: p.learning_rate for p in plans}
    assert rates == {"model4": pytest.approx(1e-3), "compact-binary": pytest.approx(PROFILES["quick"].learning_rate)}
