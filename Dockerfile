# IncliNET web/worker image on a slim Python base. The same image runs gunicorn, celery worker and beat.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    VAR_DIR=/var/lib/inclinet

RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 curl \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY . .
RUN useradd --system --home /app inclinet \
 && mkdir -p /var/lib/inclinet \
 && chown -R inclinet /var/lib/inclinet
USER inclinet

EXPOSE 8000
CMD ["gunicorn", "inclinet_site.wsgi", "-b", "0.0.0.0:8000", "--workers", "3", "--timeout", "120"]
