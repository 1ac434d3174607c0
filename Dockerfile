# One image for every Python service in docker-compose.yml: web (gunicorn), realtime (uvicorn), migrate, worker,
# beat. Runtime requirements only: tests, lint and the embedded servers are in requirements-dev.txt.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# Static files are part of the image (whitenoise serves them with hashed names); collectstatic only
# loads settings, so a throwaway key is enough here.
RUN SECRET_KEY=collectstatic-only STATIC_ROOT=/app/static-root python manage.py collectstatic --noinput \
    && useradd --system --uid 10001 --home-dir /app helpdesk \
    && mkdir -p /data/media \
    && chown helpdesk /data/media

USER helpdesk
ENV STATIC_ROOT=/app/static-root \
    MEDIA_ROOT=/data/media
EXPOSE 8000 8001
CMD ["gunicorn", "helpdesk.wsgi:application", "--config", "helpdesk/gunicorn.conf.py", "--bind", "0.0.0.0:8000"]
