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
    PYTHONUNBUFFERED=1
# The process is healthy while it runs; a failed start-up exits non-zero.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s CMD ["python", "-c", "import os; os.kill(1, 0)"]
ENTRYPOINT ["foot-traffic"]
CMD ["run"]
