"""Benchmark: time from pressing "Retrain" to the new ensemble being active, and the orchestration overhead
(Celery, the database progress writes, the run lease, the job barrier) against the same training run directly.

1. In a separate database ``inclinet_bench_retrain`` (migrated here) and a scratch model store, make
   ``--galaxies`` labelled synthetic galaxies (a consensus, as volunteers would leave it).
2. Start a real Celery worker (queues default, train, predict; concurrency 1) and wait until it answers.
3. Orchestrated: a staff user POSTs the Retrain form (the button's request, through the view) with a new
   snapshot and ``--promote``; the clock stops when the job's ensemble is active.
4. Direct: a fresh Python process (so it pays the same imports) builds the same snapshot, trains the same
   members with ``training.ml.retrain.train_member`` one after another, assembles, evaluates and promotes.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/inclinet_bench_retrain REDIS_URL=redis://127.0.0.1:6379/6 \\
        .venv/bin/python benchmarks/retrain.py --profile quick            # the real thing (~15 min on 2 cores)
        .venv/bin/python benchmarks/retrain.py --profile tiny --epochs 2 --steps 40 --flavours 0,1   # smaller

Results go to stdout and ``benchmarks/out/retrain.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
DB_NAME = "inclinet_bench_retrain"
sys.path.insert(0, str(ROOT))


def _setup(store: Path) -> None:
    url = os.environ.get("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{DB_NAME}")
    if not url.rstrip("/").endswith(DB_NAME):
        raise SystemExit(f"Refusing to run outside the {DB_NAME} database (DATABASE_URL={url}).")
    os.environ.update(DATABASE_URL=url, MODEL_STORE=str(store / "model_store"), MEDIA_ROOT=str(store / "media"),
                      DJANGO_SETTINGS_MODULE="inclinet_site.settings", TF_CPP_MIN_LOG_LEVEL="2")
    import psycopg

    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone():
            conn.execute(f"CREATE DATABASE {DB_NAME}")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _reset_and_label(n: int) -> None:
    from catalog.models import Galaxy
    from training.models import DatasetSnapshot, Ensemble, RetrainJob, TrainingRun
    from training.tests.helpers import labelled_galaxies

    TrainingRun.objects.all().delete()
    RetrainJob.objects.all().delete()
    Ensemble.objects.all().delete()
    DatasetSnapshot.objects.all().delete()
    Galaxy.objects.filter(name__startswith="SYN-BENCH").delete()
    labelled_galaxies(n, rejects=max(2, n // 5), prefix="SYN-BENCH")


def _form(args: argparse.Namespace) -> dict:
    return {"snapshot": "new", "profile": args.profile, "architectures": ["compact"],
            "flavours": args.flavours.split(","), "reject_architectures": ["compact"], "queue": "train",
            "promote": "on", **({"epochs": str(args.epochs)} if args.epochs else {}),
            **({"steps_per_epoch": str(args.steps)} if args.steps else {})}


def orchestrated(args: argparse.Namespace) -> dict:
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    from inclinet_site.celery import ping
    from tests.workers import CeleryWorker, worker_env
    from training.models import Ensemble, RetrainJob

    worker = CeleryWorker(env=worker_env(), queues="default,train,predict", log_path=Path(args.tmp) / "worker.log")
    worker.start()
    try:
        ping.apply_async(queue="default").get(timeout=120)  # the worker is up before the clock starts
        staff, _ = get_user_model().objects.get_or_create(username="bench-staff", defaults={"is_staff": True})
        client = Client()
        client.force_login(staff)
        started = time.perf_counter()
        response = client.post(reverse("training:dashboard"), _form(args))
        assert response.status_code == 302, response.content[:2000]
        job = RetrainJob.objects.latest("pk")
        while True:
            job.refresh_from_db()
            if job.status == RetrainJob.Status.FAILED:
                raise SystemExit(f"retrain failed: {job.error}\n{worker.log()[-4000:]}")
            if job.ensemble_id and Ensemble.objects.filter(pk=job.ensemble_id, status="active").exists():
                break
            time.sleep(0.2)
        seconds = time.perf_counter() - started
        train_seconds = sum(r.metrics.get("train", {}).get("seconds", 0.0) for r in job.runs.all())
        return {"seconds": seconds, "trainer_seconds": train_seconds, "runs": job.runs.count(),
                "timings": job.timings, "version": job.ensemble.version}
    finally:
        worker.stop()


def direct(args: argparse.Namespace) -> dict:
    """The same work in one process, no Celery and no progress writes (run in a fresh interpreter)."""
    started = time.perf_counter()
    from django.conf import settings

    from training.ml.pipeline import PROFILES
    from training.ml.retrain import assemble_ensemble, evaluate_folder, plan_members, train_member
    from training.ml.snapshot import load_snapshot
    from training.registry import ensemble_promote, ensemble_register
    from training.snapshots import snapshot_build, snapshot_folder

    snapshot = snapshot_build()
    rows = load_snapshot(snapshot_folder(snapshot=snapshot))
    plans = plan_members(profile=args.profile, architectures=["compact"],
                         flavours=[int(f) for f in args.flavours.split(",")], reject_architectures=["compact"],
                         epochs=args.epochs, steps_per_epoch=args.steps)
    out = Path(settings.MODEL_STORE) / "direct"
    members, trainer_seconds = [], 0.0
    for plan in plans:
        result = train_member(rows, plan, output_dir=out / "runs" / plan.name, snapshot_seed=2026)
        trainer_seconds += result.seconds
        members.append({"name": plan.name, "architecture": plan.architecture, "flavour": plan.flavour,
                        "kind": plan.kind, "group": plan.group, "history": result.history,
                        "model_path": result.model_path})
    folder = Path(settings.MODEL_STORE) / "ensembles" / "direct"
    assemble_ensemble(folder, version="direct", members=members, tta=PROFILES[args.profile].tta,
                      snapshot={"name": snapshot.name})
    evaluate_folder(folder, rows, log=lambda _: None)
    ensemble_promote(ensemble=ensemble_register(folder=folder))
    return {"seconds": time.perf_counter() - started, "trainer_seconds": trainer_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--flavours", default="0,1,2,3")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--steps", type=int, help="steps per epoch (default: the profile's images ÷ batch)")
    parser.add_argument("--galaxies", type=int, default=200)
    parser.add_argument("--direct-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tmp", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.direct_only:
        _setup(Path(args.tmp))
        print(json.dumps(direct(args)))
        return
    args.tmp = tempfile.mkdtemp(prefix="bench-retrain-")
    _setup(Path(args.tmp))
    from inclinet_site.celery import app  # noqa: F401 - the worker fixture's imports need Django ready

    _reset_and_label(args.galaxies)
    result = {"orchestrated": orchestrated(args)}
    # Direct run: same snapshot content (same labels), fresh model store, fresh interpreter.
    from training.models import Ensemble

    Ensemble.objects.all().delete()
    shutil.rmtree(Path(args.tmp) / "model_store" / "runs", ignore_errors=True)
    command = [sys.executable, __file__, "--direct-only", "--tmp", args.tmp, "--profile", args.profile,
               "--flavours", args.flavours, *(["--epochs", str(args.epochs)] if args.epochs else []),
               *(["--steps", str(args.steps)] if args.steps else [])]
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    result["direct"] = json.loads(output.strip().splitlines()[-1])
    o, d = result["orchestrated"], result["direct"]
    result["overhead_fraction"] = (o["seconds"] - d["seconds"]) / d["seconds"]
    result["args"] = {k: v for k, v in vars(args).items() if k not in ("direct_only", "tmp")}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "retrain.json").write_text(json.dumps(result, indent=1))
    print(f"click → active: {o['seconds']:.1f} s ({o['runs']} runs; trainer time {o['trainer_seconds']:.1f} s)")
    print(f"direct, same work: {d['seconds']:.1f} s (trainer time {d['trainer_seconds']:.1f} s)")
    print(f"orchestration overhead: {100 * result['overhead_fraction']:+.1f}%")
    shutil.rmtree(args.tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
