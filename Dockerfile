# govhub: one image for every hub replica. Build: docker build -t govhub .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY govhub ./govhub
COPY ops ./ops
COPY catalog_registry ./catalog_registry
COPY exchange ./exchange
COPY seal ./seal
COPY certhub ./certhub
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GOVHUB_DATA_DIR=/data \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus
COPY --from=build /wheels /wheels
# The CJK TrueType font whose glyphs OFD certificate copies embed (certhub/ofdfont.py).
RUN apt-get update && apt-get install -y --no-install-recommends fonts-wqy-zenhei && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /data govhub \
    && mkdir -p /data /tmp/prometheus && chown govhub /data /tmp/prometheus
USER govhub
WORKDIR /data
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]
# Migrations run at start-up under a cluster-wide lock, so replicas may start together.
CMD ["govhub", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
