# Bulkhead: one binary, built on Debian bookworm, run as a non-root user.
#
#   docker build -t bulkhead .
#   docker run --rm -e DATABASE_URL=... -e REDIS_URL=... bulkhead serve
#
# The same image runs `serve`, `serve --no-workers`, `worker` and `migrate`
# (see docker-compose.yml).

# ---------------------------------------------------------------- build
FROM debian:bookworm AS build
WORKDIR /src

# Build dependencies come from the same script developers use; copied alone
# first so this layer is cached until the script changes.
COPY scripts/bootstrap scripts/bootstrap
RUN bash scripts/bootstrap --build-only && rm -rf /var/lib/apt/lists/*

COPY . .
RUN rm -rf build/release \
 && cmake --preset release \
 && cmake --build --preset release -j"$(nproc)" \
 && test -x build/release/bulkhead

# What the runtime needs besides the binary: migrations, scripts, and the
# module manifests the scripts derive roles and ACLs from.
RUN mkdir -p /out/modules \
 && for f in modules/*/module.cmake; do \
      mkdir -p "/out/$(dirname "$f")" && cp "$f" "/out/$f"; \
    done \
 && cp -r migrations scripts /out/

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
COPY --from=build /out/ /app/

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
ENTRYPOINT ["/usr/local/bin/bulkhead"]
CMD ["serve"]
