# Portcullis: build in the Rust image, run in a slim Debian.
FROM rust:1.88-bookworm AS build
WORKDIR /src
# docker build --build-arg SOURCE_GIT_SHA=$(git rev-parse --short HEAD) --build-arg SOURCE_GIT_TAG=...
ARG SOURCE_GIT_SHA=unknown
ARG SOURCE_GIT_TAG=
ARG SOURCE_DATE_EPOCH=0
COPY Cargo.toml Cargo.lock build.rs ./
COPY src src
COPY config config
COPY migrations migrations
COPY benches benches
RUN cargo build --release --locked --bin portcullis

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home /app portcullis
WORKDIR /app
COPY --from=build /src/target/release/portcullis /usr/local/bin/portcullis
COPY config config
COPY policies policies
RUN mkdir -p var && chown portcullis var
# Numeric, so that an orchestrator can tell it is not root (runAsNonRoot).
USER 10001
ENV PORTCULLIS_SERVER__LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["portcullis"]
CMD ["serve"]
