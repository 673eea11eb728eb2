# The loggerhub binary (every role) with its built-in plugins.
FROM rust:1.95-bookworm AS build
RUN rustup target add wasm32-wasip2
WORKDIR /src
COPY . .
RUN cargo build --release -p loggerhub --bin loggerhub

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --home /var/lib/loggerhub loggerhub \
    && mkdir -p /var/lib/loggerhub && chown loggerhub /var/lib/loggerhub
COPY --from=build /src/target/release/loggerhub /usr/local/bin/loggerhub
USER loggerhub
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/loggerhub"]
CMD ["serve", "--data-dir", "/var/lib/loggerhub", "--listen", "0.0.0.0:8080"]
