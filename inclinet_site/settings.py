"""Django settings, read from the environment (12-factor).

With no environment at all the site runs on embedded defaults: SQLite in ``var/`` and a
Celery broker on kombu's filesystem transport, so ``make run`` works on a bare machine.
Set ``DATABASE_URL`` and ``REDIS_URL`` for PostgreSQL and Redis (tests, production).

``DEBUG`` is off unless asked for. *Embedded mode* (``DATABASE_URL`` unset or SQLite, i.e. ``make run``)
additionally gets a random ``SECRET_KEY`` kept in ``var/secret_key``, plain-http cookies and no HTTPS
redirect (``INSECURE_HTTP``), and media served by Django (``SERVE_MEDIA``). Anything else (PostgreSQL,
docker compose) must pass ``SECRET_KEY`` and gets HTTPS-only defaults.
"""
from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from kombu import Queue
from whitenoise.compress import Compressor

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def normalise_webroot(raw: str) -> str:
    """``inclinet`` / ``/inclinet`` / ``/inclinet/`` all become ``/inclinet/``; empty is ``/``."""
    stripped = raw.strip().strip("/")
    return f"/{stripped}/" if stripped else "/"


def read_or_create_secret_key(path: Path) -> str:
    """The key in ``path``; a new random one (mode 0600) when the file does not exist yet."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".secret_key.", delete=False) as handle:
            handle.write(secrets.token_urlsafe(50))  # NamedTemporaryFile files are created 0600
        try:
            # link() never overwrites: when web and worker start together, the first key written wins.
            os.link(handle.name, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(handle.name)
    key = path.read_text().strip()
    if not key:
        raise RuntimeError(f"SECRET_KEY_FILE {path} is empty")
    return key


DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'inclinet.sqlite3'}")
# Embedded mode: one machine, SQLite, plain http on loopback (`make run`). Production uses PostgreSQL.
EMBEDDED = DATABASE_URL.startswith("sqlite")
DEBUG = env_bool("DEBUG", False)  # tracebacks are for developers who ask for them, never for visitors
# Used only with DEBUG on and no other key (e.g. the test run); production refuses it below.
DEV_SECRET_KEY = "dev-only-insecure-key-change-me"
# SECRET_KEY from the environment, else from SECRET_KEY_FILE (created on first use). Only embedded mode has a
# default file: a PostgreSQL deployment shared by several hosts needs one key that the operator passes in.
SECRET_KEY_FILE = os.environ.get("SECRET_KEY_FILE") or (str(VAR_DIR / "secret_key") if EMBEDDED else "")
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY and SECRET_KEY_FILE:
    SECRET_KEY = read_or_create_secret_key(Path(SECRET_KEY_FILE))
if not SECRET_KEY and DEBUG:
    SECRET_KEY = DEV_SECRET_KEY
if not DEBUG and SECRET_KEY in ("", DEV_SECRET_KEY):
    # Production refuses to start without a real key rather than sign sessions with a guessable one.
    raise RuntimeError(
        "SECRET_KEY must be set (and not the development key) when DEBUG is off: pass SECRET_KEY or SECRET_KEY_FILE"
    )
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

WEBROOT = normalise_webroot(os.environ.get("WEBROOT", "/"))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "catalog",
    "labeling",
    "training",
    "predictions",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # No inline scripts or styles anywhere (issue 16); the API docs pages set their own, wider policy.
    "inclinet_site.security.ContentSecurityPolicyMiddleware",
    # Before anything reads a body: over-large requests get a 413 from their Content-Length.
    "inclinet_site.security.BodySizeLimitMiddleware",
    # A connection PostgreSQL dropped under a request: 503 + Retry-After; the next request reconnects.
    "inclinet_site.resilience.DatabaseUnavailableMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # An empty ?_to_field= made every admin change and delete page a 500 (Django 5.2): 400 instead.
    "inclinet_site.admin_guard.AdminInputGuardMiddleware",
]

ROOT_URLCONF = "inclinet_site.urls"
WSGI_APPLICATION = "inclinet_site.wsgi.application"
ASGI_APPLICATION = "inclinet_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "inclinet_site.context_processors.site",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # A database that accepts connections and never answers fails a connect in seconds rather than never.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout",
                                                              int(os.environ.get("DB_CONNECT_TIMEOUT_S", "5")))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Password log-ins go through a per-account lock-out (inclinet_site/security.py): after this many failures
# on one account it is refused for LOGIN_LOCKOUT_BASE_S, doubling per further failure up to the maximum; a
# successful log-in resets it. Counted in the default cache, like the per-address LOGIN_RATE.
AUTHENTICATION_BACKENDS = ["inclinet_site.security.LockoutModelBackend"]
LOGIN_LOCKOUT_THRESHOLD = int(os.environ.get("LOGIN_LOCKOUT_THRESHOLD", "5"))
LOGIN_LOCKOUT_BASE_S = float(os.environ.get("LOGIN_LOCKOUT_BASE_S", "60"))
LOGIN_LOCKOUT_MAX_S = float(os.environ.get("LOGIN_LOCKOUT_MAX_S", "3600"))
CONTENT_SECURITY_POLICY = os.environ.get(
    "CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; font-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = f"{WEBROOT}static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = f"{WEBROOT}media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
MODEL_STORE = Path(os.environ.get("MODEL_STORE", VAR_DIR / "model_store"))
STORAGES = {
    # Files appear whole or not at all (a full disk mid-upload leaves nothing half-written).
    "default": {"BACKEND": "inclinet_site.resilience.AtomicFileSystemStorage"},
    # Without DEBUG, pages link content-hashed files that whitenoise serves with far-future caching;
    # that needs `manage.py collectstatic` first (scripts/run.sh, the Docker image build).
    "staticfiles": {
        "BACKEND": "inclinet_site.storage.StaticStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Only the hashed copies are kept and source maps stay uncompressed (browsers fetch them only for developer
# tools): collectstatic then compresses a third of the bytes.
WHITENOISE_KEEP_ONLY_HASHED_FILES = True
WHITENOISE_SKIP_COMPRESS_EXTENSIONS = (*Compressor.SKIP_COMPRESS_EXTENSIONS, "map")
# Django serves the public media folders itself (inclinet_site/media.py) when no web server sits in front of
# MEDIA_ROOT: `make run` and docker compose run gunicorn alone.
SERVE_MEDIA = env_bool("SERVE_MEDIA", EMBEDDED or DEBUG)
LOGIN_URL = "admin:login"

# Upload limits: the original API took at most 1 MB; Django refuses bigger bodies early.
MAX_UPLOAD_BYTES = int(os.environ.get("MAX_UPLOAD_BYTES", str(1024 * 1024)))
MAX_IMAGE_PIXELS = int(os.environ.get("MAX_IMAGE_PIXELS", str(25_000_000)))
# Uploads and cut-outs larger than this on their longer side are decoded downscaled (catalog.imaging.load_image):
# alignment on a 25-megapixel image costs seconds, and the networks see 128 × 128 pixels.
MAX_DECODE_SIDE = int(os.environ.get("MAX_DECODE_SIDE", "2048"))
# The beat task predictions.tasks.expire_prediction_media (every MEDIA_EXPIRY_INTERVAL_S) deletes page uploads
# (media uploads/) older than MEDIA_EXPIRY_AGE_S and stored model inputs (media model_inputs/) older than
# MODEL_INPUT_EXPIRY_AGE_S, which outlives the 7-day prediction cache whose answers link them.
MEDIA_EXPIRY_AGE_S = float(os.environ.get("MEDIA_EXPIRY_AGE_S", str(24 * 3600)))
MODEL_INPUT_EXPIRY_AGE_S = float(os.environ.get("MODEL_INPUT_EXPIRY_AGE_S", str(8 * 24 * 3600)))
MEDIA_EXPIRY_INTERVAL_S = float(os.environ.get("MEDIA_EXPIRY_INTERVAL_S", "3600"))
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * MAX_UPLOAD_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * MAX_UPLOAD_BYTES
# Multipart bodies may be larger (a batch archive is up to 50 MB); anything beyond gets a 413 up front.
MAX_REQUEST_BYTES = int(os.environ.get("MAX_REQUEST_BYTES", str(51 * 1024 * 1024)))

# --- Redis, Celery and caching -------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_FS_DIR = VAR_DIR / "celery"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": 3600}
    CACHES = {
        "default": {
            # Redis restarting turns cache reads into misses instead of 500s (see inclinet_site/resilience.py).
            "BACKEND": "inclinet_site.resilience.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "inclinet"),
        }
    }
else:
    # Zero-config: a real broker on the local filesystem, shared by web and worker processes.
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_FS_DIR / "queue"),
        "data_folder_out": str(CELERY_FS_DIR / "queue"),
        "control_folder": str(CELERY_FS_DIR / "control"),
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = f"file://{CELERY_FS_DIR / 'results'}"
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }
if REDIS_URL:
    # A Redis that is down or hangs fails a send within seconds (503 to the client) instead of after
    # redis-py's unbounded waits and the result backend's 20 one-second reconnects (issue 16).
    CELERY_BROKER_TRANSPORT_OPTIONS.update({"socket_connect_timeout": 2, "socket_timeout": 10})
    CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = 2
    CELERY_REDIS_SOCKET_TIMEOUT = 10
    CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"retry_policy": {"max_retries": 2, "interval_start": 0,
                                                                "interval_step": 0.5, "interval_max": 0.5}}
else:
    # The worker looks for new messages this often (kombu's default 1 s made the /healthz round trip ~1.5 s).
    CELERY_BROKER_TRANSPORT_OPTIONS["polling_interval"] = float(os.environ.get("CELERY_FS_POLLING_S", "0.1"))
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES_NAMES = ("default", "train", "predict")
CELERY_TASK_QUEUES = tuple(Queue(name) for name in CELERY_TASK_QUEUES_NAMES)
# Training alone on `train` (its own worker: a long build never delays exports, batches or the health ping),
# predictions on `predict`, everything else on `default`. tests/test_queues.py checks every registered task.
TRAINING_QUEUE_TASKS = ("build_ensemble", "build_snapshot", "train_ensemble", "train_model", "evaluate_model",
                        "requeue_orphaned_runs", "requeue_orphaned_builds")
CELERY_TASK_ROUTES = {
    **{f"training.tasks.{name}": {"queue": "train"} for name in TRAINING_QUEUE_TASKS},
    "training.tasks.*": {"queue": "default"},
    "predictions.tasks.*": {"queue": "predict"},
}
# Soft time limit (s) per task; the hard limit kills the pool child CELERY_HARD_LIMIT_GRACE_S later (at least
# 10 %). Unlisted tasks get CELERY_DEFAULT_SOFT_TIME_LIMIT_S. Override one with
# TASK_SOFT_TIME_LIMIT_<NAME>_S, NAME being the task name upper-cased with "." as "_"
# (e.g. TASK_SOFT_TIME_LIMIT_PREDICTIONS_TASKS_RUN_BATCH_JOB_S=7200). build_ensemble keeps its per-profile
# limits (TRAINING_BUILD_TIME_LIMITS_S below), set on each message.
CELERY_DEFAULT_SOFT_TIME_LIMIT_S = float(os.environ.get("CELERY_DEFAULT_SOFT_TIME_LIMIT_S", "1800"))
CELERY_HARD_LIMIT_GRACE_S = float(os.environ.get("CELERY_HARD_LIMIT_GRACE_S", "60"))
TASK_SOFT_TIME_LIMITS_S = {
    name: float(os.environ.get("TASK_SOFT_TIME_LIMIT_" + name.upper().replace(".", "_") + "_S", default))
    for name, default in {
        "inclinet_site.ping": 10,
        "predictions.tasks.run_batch_job": 6 * 3600,            # 5,000 items, each up to a remote fetch
        "predictions.tasks.requeue_orphaned_batch_jobs": 120,
        "predictions.tasks.requeue_stale_batch_jobs": 120,
        "labeling.export": 1800,
        "labeling.requeue_stale_exports": 120,
        "labeling.calibrate": 1800,
        "labeling.sync_priorities": 600,
        "training.tasks.build_snapshot": 3600,
        "training.tasks.train_ensemble": 600,                   # fans out only
        "training.tasks.train_model": 12 * 3600,                # one member; resumes from its checkpoint
        "training.tasks.evaluate_model": 2 * 3600,
        "predictions.tasks.predict_catalogue": 4 * 3600,
        "training.tasks.requeue_orphaned_runs": 300,
        "training.tasks.requeue_orphaned_builds": 300,
        "training.tasks.export_consensus": 1800,
        "training.tasks.retrain_if_due": 600,
    }.items()
}
# A job still "queued" this long after it was created lost its message (a broker restart without
# persistence, a web process killed between commit and send): the periodic sweeps send it again.
QUEUED_JOB_STALE_S = float(os.environ.get("QUEUED_JOB_STALE_S", "900"))
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TRACK_STARTED = True
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_TASK_ALWAYS_EAGER = False
# Celery beat's periodic work, all of it (tasks by name: settings import no app). Sweeps run every 2 minutes.
LABELING_CALIBRATION_INTERVAL_S = float(os.environ.get("LABELING_CALIBRATION_INTERVAL_S", "3600"))
SWEEP_INTERVAL_S = 120.0
CELERY_BEAT_SCHEDULE = {
    "labeling-calibrate": {"task": "labeling.calibrate", "schedule": LABELING_CALIBRATION_INTERVAL_S},
    "labeling-sync-priorities": {"task": "labeling.sync_priorities", "schedule": 600.0},
    "labeling-requeue-stale-exports": {"task": "labeling.requeue_stale_exports", "schedule": SWEEP_INTERVAL_S},
    "training-requeue-orphaned-runs": {"task": "training.tasks.requeue_orphaned_runs", "schedule": SWEEP_INTERVAL_S,
                                       "options": {"queue": "train"}},
    "training-requeue-orphaned-builds": {"task": "training.tasks.requeue_orphaned_builds",
                                         "schedule": SWEEP_INTERVAL_S, "options": {"queue": "train"}},
    "training-export-consensus": {"task": "training.tasks.export_consensus", "schedule": crontab(hour=2, minute=30),
                                  "options": {"queue": "default"}},
    "training-weekly-retrain": {"task": "training.tasks.retrain_if_due",
                                "schedule": crontab(hour=3, minute=0, day_of_week="sunday"),
                                "options": {"queue": "default"}},
    "predictions-requeue-stale-batch-jobs": {"task": "predictions.tasks.requeue_stale_batch_jobs",
                                             "schedule": SWEEP_INTERVAL_S, "options": {"queue": "predict"}},
    "predictions-expire-media": {"task": "predictions.tasks.expire_prediction_media",
                                 "schedule": MEDIA_EXPIRY_INTERVAL_S, "options": {"queue": "predict"}},
}
# Time limits (s) of training.tasks.build_ensemble per profile, generous (several times the time measured on
# 2 CPU cores): the soft limit is recorded as the build's failure; the hard one, 10 % (at least 5 min) later,
# kills the pool child. Override one with TRAINING_BUILD_TIME_LIMIT_<PROFILE>_S (e.g. ..._QUICK_S=3600).
TRAINING_BUILD_TIME_LIMITS_S = {
    name: float(os.environ.get(f"TRAINING_BUILD_TIME_LIMIT_{name.upper().replace('-', '_')}_S", default))
    for name, default in {"tiny": 900, "quick": 3 * 3600, "long": 8 * 3600, "full": 96 * 3600,
                          "default": 12 * 3600}.items()
}

# --- API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "EXCEPTION_HANDLER": "inclinet_site.api.exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "inclinet_site.security.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # Throttles identify a client by REMOTE_ADDR unless this many trusted proxies sit in front and append to
    # X-Forwarded-For. DRF's default (None) trusts the header as sent, so any client could reset its counters.
    "NUM_PROXIES": int(os.environ.get("NUM_PROXIES", "0")),
    # Counters live in the default cache (Redis when REDIS_URL is set), shared by all gunicorn workers.
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("API_ANON_RATE", "120/min"),
        "user": os.environ.get("API_USER_RATE", "2000/min"),
        "login": os.environ.get("LOGIN_RATE", "10/min"),
        "signup": os.environ.get("SIGNUP_RATE", "5/hour"),
        # The astronomer page's JSON helpers (predictions/page_api.py), per signed-in user or client address.
        "predict_upload": os.environ.get("PREDICT_UPLOAD_RATE", "30/min"),
        "predict_evaluate": os.environ.get("PREDICT_EVALUATE_RATE", "60/min"),
        "predict_cutout": os.environ.get("PREDICT_CUTOUT_RATE", "120/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "IncliNET API",
    "DESCRIPTION": "Inclinations of spiral galaxies from a CNN ensemble, and the Galaxy Inclination Zoo.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and ReDoc from this site's static files (drf-spectacular-sidecar), never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Swagger UI would otherwise send the schema URL to validator.swagger.io.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS", "")
CORS_URLS_REGEX = r"^.*/api/.*$"

# PREDICTION_*, LABELING_*, TRAINING_* and LEGACY_SURVEY_* tunables are declared with their defaults in each
# app's conf.py and read through inclinet_site.conf.AppSettings (settings, then the environment).

# --- Remote services ---------------------------------------------------------------------
SDSS_CUTOUT_URL = os.environ.get(
    "SDSS_CUTOUT_URL", "https://skyserver.sdss.org/dr16/SkyServerWS/ImgCutout/getjpeg"
)
LEGACY_SURVEY_CUTOUT_URL = os.environ.get(
    "LEGACY_SURVEY_CUTOUT_URL", "https://www.legacysurvey.org/viewer/jpeg-cutout"
)
SESAME_URL = os.environ.get("SESAME_URL", "https://cds.unistra.fr/cgi-bin/nph-sesame/-oxp/SNV")
NED_LOOKUP_URL = os.environ.get("NED_LOOKUP_URL", "https://ned.ipac.caltech.edu/srs/ObjectLookup")
# HyperLEDA's SQL interface: PGC numbers the local catalogue lacks (catalog.resolvers.HyperLedaResolver).
HYPERLEDA_URL = os.environ.get("HYPERLEDA_URL", "https://leda.univ-lyon1.fr/fG.cgi")
REMOTE_TIMEOUT_S = float(os.environ.get("REMOTE_TIMEOUT_S", "10"))
REMOTE_RETRIES = int(os.environ.get("REMOTE_RETRIES", "2"))
REMOTE_RESOLVERS_ENABLED = env_bool("REMOTE_RESOLVERS_ENABLED", True)
IMAGE_SOURCE_ORDER = env_list("IMAGE_SOURCE_ORDER", "sdss,legacysurvey")

# --- Production hardening ----------------------------------------------------------------
# HTTPS-only unless DEBUG is on or INSECURE_HTTP says the site is reached over plain http (embedded mode's
# default: `make run` on http://127.0.0.1:8000, where secure-only cookies would make log-in impossible).
INSECURE_HTTP = env_bool("INSECURE_HTTP", EMBEDDED)
HTTPS_ONLY = not DEBUG and not INSECURE_HTTP
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", HTTPS_ONLY)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", HTTPS_ONLY)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", HTTPS_ONLY)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000" if HTTPS_ONLY else "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", HTTPS_ONLY)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", HTTPS_ONLY)
SECURE_CONTENT_TYPE_NOSNIFF = True
# Trust a proxy's "this came over https" header only when told which one: anyone can send X-Forwarded-Proto
# straight to gunicorn. Format "HTTP_X_FORWARDED_PROTO,https".
if os.environ.get("SECURE_PROXY_SSL_HEADER"):
    _header, _, _value = os.environ["SECURE_PROXY_SSL_HEADER"].partition(",")
    if not _header.strip().startswith("HTTP_") or not _value.strip():
        raise RuntimeError("SECURE_PROXY_SSL_HEADER must look like HTTP_X_FORWARDED_PROTO,https")
    SECURE_PROXY_SSL_HEADER = (_header.strip(), _value.strip())

# --- Structured logging ------------------------------------------------------------------
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "PIL": {"level": "WARNING"},
        "matplotlib": {"level": "WARNING"},
    },
}
