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

HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]

ENTRYPOINT ["uptimed"]
CMD ["--host", "0.0.0.0"]
