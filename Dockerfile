# syntax=docker/dockerfile:1.7
#
# One image per service, from one build of the workspace:
#
#   docker build --build-arg SERVICE=mission -t game-rewards/mission .
#   for s in gateway auth mission reward wallet gift mypage notification; do
#     docker build --build-arg SERVICE=$s -t game-rewards/$s .; done
#
# The builder stage does not depend on SERVICE, so BuildKit runs `cargo build` once and
# every further image reuses that layer; the cache mounts keep the crates and the
# target directory between builds.

############################ builder: all release binaries of the workspace
FROM rust:1.95-bookworm AS builder
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# diesel's PostgreSQL driver (pq-sys) links libpq dynamically (the rust image ships it
# as part of buildpack-deps; this makes the dependency explicit). Not pinned: it comes
# from the same Debian release as the image, which the tag pins.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# target/ is a cache mount (not part of the image), so the binaries are copied out to
# /out/bin inside the same step: exactly what `cargo build --release --bins` produced.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bins \
 && mkdir -p /out/bin \
 && find target/release -maxdepth 1 -type f -perm -u+x -exec cp {} /out/bin/ \; \
 && ls -l /out/bin

############################ runtime files of one service
FROM builder AS runtime-files
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG SERVICE
# The binary plus the shared libraries it links that the final image lacks: libpq and
# its dependencies (Kerberos, LDAP, SASL, GnuTLS, ...), resolved by ldd, so the list
# follows whatever the binary links. glibc and libgcc come with the final image and
# are not copied (they must match its loader).
RUN set -eu; \
    if [ -z "${SERVICE}" ]; then echo "build with --build-arg SERVICE=<service>" >&2; exit 1; fi; \
    if [ ! -x "/out/bin/${SERVICE}" ]; then \
      echo "no binary '${SERVICE}' in the workspace; built: $(ls /out/bin)" >&2; exit 1; fi; \
    mkdir -p /runtime/lib; \
    ldd "/out/bin/${SERVICE}" \
      | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' \
      | { grep -Ev '/(libc|libm|libdl|librt|libpthread|libresolv|libgcc_s|ld-linux[^/]*)\.so' || true; } \
      | xargs -r cp -L -t /runtime/lib; \
    ls -l /runtime/lib

############################ final image: distroless, non-root
# Choice: gcr.io/distroless/cc-debian12 (glibc, libgcc, libssl, CA certificates, tzdata;
# no shell, no package manager; ~25 MB) plus the libraries copied above, rather than
# debian:bookworm-slim + `apt-get install libpq5` (~100 MB, with a shell). Both are
# Debian 12, so the builder's libraries fit the final image's glibc. Without a shell the
# Kubernetes preStop hook uses the native `sleep` action, not `exec sleep`.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG SERVICE
LABEL org.opencontainers.image.title="game-rewards-${SERVICE}" \
      org.opencontainers.image.description="Game Rewards ${SERVICE} service"
COPY --from=runtime-files /runtime/lib/ /usr/lib/game-rewards/
COPY --from=runtime-files /out/bin/${SERVICE} /usr/local/bin/service
ENV LD_LIBRARY_PATH=/usr/lib/game-rewards \
    LISTEN_ADDR=0.0.0.0:8080 \
    LOG_FORMAT=json \
    RUST_LOG=info
# The distroless "nonroot" user.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/service"]
