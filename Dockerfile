# IncliNET web/worker image on a slim Python base. The same image runs init, gunicorn, celery workers and beat.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    VAR_DIR=/data/var \
    MEDIA_ROOT=/data/media \
    MODEL_STORE=/data/model_store \
    STATIC_ROOT=/app/staticfiles

# postgresql-client-15 matches the compose server (postgres:15): manage.py backup runs pg_dump/pg_restore.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 postgresql-client-15 curl \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY . .
# Hashed, compressed static files are part of the image (whitenoise serves them). The key only lets settings
# load for this one command; it signs nothing and is not kept.
RUN SECRET_KEY=collectstatic-only-not-a-secret python manage.py collectstatic --noinput -v0
# /data is the appdata volume; a new named volume takes these folders, and their owner, from the image.
RUN useradd --system --home /app inclinet \
 && mkdir -p /data/var /data/media /data/model_store \
 && chown -R inclinet /data
USER inclinet

EXPOSE 8000
CMD ["gunicorn", "inclinet_site.wsgi", "-b", "0.0.0.0:8000", "--workers", "2", "--threads", "8", "--timeout", "120"]
