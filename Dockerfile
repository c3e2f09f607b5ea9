# syntax=docker/dockerfile:1.7
#
# One image for every role: the builder links one executable, gamectl, and each
# Kubernetes Deployment runs it in its role (`args: ["serve", "mission"]`):
#
#   docker build -t game-rewards/server .
#   docker run game-rewards/server serve mission --help
#
# The cache mounts keep the crates and the target directory between builds. The image is
# built with the release profile, the one measured (README, "One executable").

############################ builder: the one server executable
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
# target/ is a cache mount (not part of the image), so the executable is copied out to
# /out/bin inside the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p gamectl \
 && mkdir -p /out/bin \
 && cp target/release/gamectl /out/bin/ \
 && ls -l /out/bin

############################ runtime files
FROM builder AS runtime-files
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# The executable plus the shared libraries it links that the final image lacks: libpq and
# its dependencies (Kerberos, LDAP, SASL, GnuTLS, ...), resolved by ldd, so the list
# follows whatever the binary links. glibc and libgcc come with the final image and
# are not copied (they must match its loader).
RUN set -eu; \
    mkdir -p /runtime/lib; \
    ldd /out/bin/gamectl \
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
LABEL org.opencontainers.image.title="game-rewards-server" \
      org.opencontainers.image.description="Game Rewards: every role (gamectl serve <role>)"
COPY --from=runtime-files /runtime/lib/ /usr/lib/game-rewards/
COPY --from=runtime-files /out/bin/gamectl /usr/local/bin/gamectl
ENV LD_LIBRARY_PATH=/usr/lib/game-rewards \
    LISTEN_ADDR=0.0.0.0:8080 \
    LOG_FORMAT=json \
    RUST_LOG=info
# The distroless "nonroot" user.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/gamectl"]
# The role comes from the Deployment's args: `serve <role>`.
CMD ["serve", "--help"]
