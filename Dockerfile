# foot-traffic producer image: slim, non-root, with a health check.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER app
# the working directory receives DEAD_LETTER_FILE (mount a volume here to keep it)
WORKDIR /home/app
ENV KAFKA_BROKER=kafka:9092 \
    KAFKA_TOPIC=foot_traffic \
    PYTHONUNBUFFERED=1 \
    METRICS_HOST=0.0.0.0
# With METRICS_PORT set, healthy while /healthz answers 200 (503 while connecting, after a long
# Kafka outage, or while stopping); without it, healthy while the process runs. A failed start-up
# exits non-zero either way.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s CMD ["python", "-c", "import os, urllib.request as u; p = os.environ.get('METRICS_PORT'); h = os.environ.get('METRICS_HOST') or '127.0.0.1'; h = {'0.0.0.0': '127.0.0.1', '::': '[::1]'}.get(h, f'[{h}]' if ':' in h else h); u.urlopen(f'http://{h}:{p}/healthz', timeout=4) if p else os.kill(1, 0)"]
ENTRYPOINT ["foot-traffic"]
CMD ["run"]
