# The launchrelay service image: relay, tracker, status and the demo are subcommands of one CLI.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/launchrelay --create-home launchrelay
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
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
