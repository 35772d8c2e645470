# Bulkhead: one binary, built on Debian bookworm, run as a non-root user.
#
#   docker build -t bulkhead .
#   docker run --rm bulkhead routes        # every route and its module; needs nothing else
#
# `serve` needs Postgres, Redis and its secrets; docker-compose.yml wires them
# up (README, "With Docker"). By hand, on the compose network, with the
# secrets of an .env file (.env.example):
#
#   docker run --rm --network bulkhead_default --env-file .env \
#     -e DATABASE_URL=postgresql://bulkhead@postgres:5432/bulkhead -e REDIS_URL=redis://redis:6379 \
#     bulkhead serve
#
# The image runs in prod mode unless BULKHEAD_ENV=dev. Its entrypoint
# (scripts/container-entrypoint) loads the secrets and passes SIGTERM on; the
# same image runs `serve`, `serve --no-workers`, `worker` and `migrate`, and
# the compose file's one-shot `secrets` (scripts/container-secrets).

# ---------------------------------------------------------------- build
FROM debian:bookworm AS build
WORKDIR /src

# Build dependencies come from the same script developers use; copied alone
# first so this layer is cached until the script changes.
COPY scripts/bootstrap scripts/bootstrap
RUN bash scripts/bootstrap --build-only && rm -rf /var/lib/apt/lists/*

COPY . .
# Only the server: no tests (the release preset turns them off), no benchmarks.
RUN rm -rf build/release \
 && cmake --preset release \
 && cmake --build --preset release --target bulkhead -j"$(nproc)" \
 && test -x build/release/bulkhead

# ---------------------------------------------------------------- runtime
FROM debian:bookworm-slim AS runtime

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libmicrohttpd12 libpq5 libjansson4 libjwt0 libhiredis0.14 libsodium23 \
      libcurl4 libssl3 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 bulkhead \
 && useradd --system --uid 10001 --gid bulkhead --home-dir /app \
      --no-create-home --shell /usr/sbin/nologin bulkhead \
 && mkdir -p /app /var/lib/bulkhead \
 && chown bulkhead:bulkhead /var/lib/bulkhead

COPY --from=build /src/build/release/bulkhead /usr/local/bin/bulkhead
COPY --from=build /src/migrations /app/migrations
COPY scripts/container-entrypoint /usr/local/bin/bulkhead-entrypoint
COPY scripts/container-secrets /usr/local/bin/bulkhead-secrets
COPY scripts/container-healthcheck /usr/local/bin/bulkhead-healthcheck

# Fail the image build, not the first start, if a shared library is missing.
RUN if ldd /usr/local/bin/bulkhead | grep 'not found'; then exit 1; fi

WORKDIR /app
ENV BULKHEAD_ENV=prod \
    BULKHEAD_HTTP_ADDR=0.0.0.0 \
    BULKHEAD_HTTP_PORT=8080 \
    BULKHEAD_MIGRATIONS_DIR=/app/migrations \
    BULKHEAD_DATA_DIR=/var/lib/bulkhead

USER bulkhead
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/bulkhead-entrypoint"]
CMD ["serve"]
