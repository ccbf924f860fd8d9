# uptimed in one small container. The steps are the same install that CI tests (pip install .).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DATABASE_URL=sqlite:////data/uptimed.db

RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin uptimed \
    && mkdir -p /data && chown uptimed /data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY uptimed ./uptimed
RUN pip install .

USER uptimed
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000

# The check follows UPTIMED_PORT as the daemon does (8000 if unset, or if it is the tcp://
# address Kubernetes sets for a Service named uptimed): change the port with -e UPTIMED_PORT.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; p = os.environ.get('UPTIMED_PORT', '').strip(); p = '8000' if not p or p.lower().startswith('tcp://') else p; sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{p}/healthz', timeout=2).status != 200)"]

ENTRYPOINT ["uptimed"]
CMD ["--host", "0.0.0.0"]
