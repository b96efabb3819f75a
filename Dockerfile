# The launchrelay service image: relay, tracker, status, init and the demo are subcommands of one CLI.
# Base pinned to a patch release (pin the digest as well where your registry policy asks for it:
# `docker buildx imagetools inspect python:3.11.14-slim-bookworm`).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
# Dependencies first, from the lock file (hashes checked): a change to src/ reuses this layer.
COPY requirements.lock ./
RUN pip wheel --no-cache-dir --require-hashes --wheel-dir /wheels -r requirements.lock
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ARG VERSION=0.2.0
LABEL org.opencontainers.image.title="launchrelay" \
      org.opencontainers.image.description="Government-to-government launch notifications relayed over Kafka" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://example.invalid/launchrelay"
RUN useradd --system --uid 10001 --home-dir /var/lib/launchrelay --create-home launchrelay \
 && mkdir -p /var/lib/launchrelay/ledger /etc/launchrelay \
 && chown 10001:10001 /var/lib/launchrelay/ledger /etc/launchrelay
COPY --from=build /wheels /wheels
# every Kafka codec (gzip built in; snappy, lz4, zstd from the lock), installed without reaching an index
RUN pip install --no-cache-dir --no-index /wheels/*.whl && rm -rf /wheels
USER 10001
WORKDIR /var/lib/launchrelay
ENV LAUNCHRELAY_LOG_FORMAT=json \
    LAUNCHRELAY_METRICS_HOST=0.0.0.0 \
    LAUNCHRELAY_METRICS_PORT=9400 \
    LAUNCHRELAY_DATA_DIR=/var/lib/launchrelay
EXPOSE 9400
HEALTHCHECK --interval=10s --timeout=5s --retries=3 CMD ["launchrelay", "health"]
ENTRYPOINT ["launchrelay"]
CMD ["relay"]
