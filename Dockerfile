# syntax=docker/dockerfile:1
#
# crdb-migrate image: the binary plus the example migrations in /migrations.
# Applications bake their own migrations in with a two-line Dockerfile:
#     FROM <registry>/crdb-migrate:<version>
#     COPY migrations /migrations
# Base-image choice (distroless/cc rather than musl + scratch) is explained in docs/kubernetes.md ("The image").

ARG RUST_VERSION=1.95

# ---- build: a glibc toolchain on the same Debian release as the runtime (bookworm = debian12),
# so the binary links against the glibc the runtime image ships.
FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
# build.rs only marks which integration tests apply on a machine; cargo needs it to build at all.
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
# --locked: the build uses exactly the reviewed Cargo.lock and fails rather than update it.
# The cache mounts keep the registry and target directory between builds on the same builder.
# Nothing here names an architecture: a multi-platform build (linux/amd64,linux/arm64) runs this
# stage once per platform, natively or under QEMU, each with that platform's rust image. A cache
# mount's id defaults to its path and is shared by all platforms (moby/buildkit#2598), so the
# target directory gets one id per platform: two concurrent builds would otherwise write
# target/release/crdb-migrate in the same directory, and one could copy out the other's binary.
ARG TARGETPLATFORM
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,id=crdb-migrate-target-${TARGETPLATFORM},sharing=locked \
    cargo build --release --locked \
    && install -D -m 0755 target/release/crdb-migrate /out/crdb-migrate

# ---- runtime: glibc + libgcc_s + CA certificates + /etc/passwd with uid 65532 ("nonroot"),
# no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=build /out/crdb-migrate /usr/local/bin/crdb-migrate
# Owned by root and world-readable: the non-root process can read them but never change them.
COPY --chown=0:0 migrations /migrations
ENV MIGRATIONS_DIR=/migrations
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/crdb-migrate"]
# No CMD: with no arguments the binary runs `migrate`, so the bare image is an init container.
