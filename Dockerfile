# Production image: Daphne (web), Celery worker and beat all run from it (see docker-compose.yml).
FROM node:20-bookworm-slim AS assets
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && mkdir -p vendor && \
    cp node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css \
       node_modules/htmx.org/dist/htmx.min.js vendor/

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 VAR_DIR=/var/lib/factory
# mariadb-client: mariadb-dump and mariadb for `manage.py backup` / `restore` (README "Backup and restore").
RUN apt-get update && apt-get install -y --no-install-recommends build-essential pkg-config libmariadb-dev mariadb-client tzdata \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt requirements-mysql.txt ./
RUN pip install --no-cache-dir -r requirements.txt -r requirements-mysql.txt
COPY . .
COPY --from=assets /src/vendor static/vendor
RUN DEBUG=true python manage.py collectstatic --noinput && \
    useradd --system --home /var/lib/factory factory && mkdir -p /var/lib/factory && chown factory /var/lib/factory
USER factory
EXPOSE 8000
CMD ["uvicorn", "factory.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--workers", "2", "--loop", "uvloop", "--http", "httptools", "--no-proxy-headers", "--no-access-log"]
