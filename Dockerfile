# syntax=docker/dockerfile:1
#
# The prescripto image: one static binary on distroless, as a non-root user.
#
#   docker build -t prescripto:local .
#   docker run --rm -p 8080:8080 -v prescripto-data:/data prescripto:local serve --demo
#
# The command picks the role: serve (everything in one process), api,
# projector, worker, admin create, health. docker-compose.yml runs the roles
# against KurrentDB, MongoDB and Redis; docs/deploy.md explains the setup.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules in a layer of their own: rebuilt only when go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download && go mod verify
COPY . .
# Pure Go (the SQLite driver is modernc.org/sqlite), so a static binary.
# VERSION names the build in logs and Sentry reports (docker build --build-arg VERSION=...).
ARG VERSION=dev
RUN --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.buildVersion=${VERSION}" -o /out/prescripto ./cmd/prescripto
# The data directory, owned by the runtime user and private to it (0700: it
# holds password hashes and personal data; the image has no shell to create
# it later). COPY keeps the mode.
RUN mkdir -p /out/data && chmod 0700 /out/data

# distroless static: CA certificates (Sentry, Razorpay), /etc/passwd with
# nonroot (65532), no shell, no package manager. The binary embeds time/tzdata.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/prescripto /prescripto
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV PRESCRIPTO_ADDR=:8080 \
    PRESCRIPTO_DATA=/data
EXPOSE 8080
# No curl in the image: the binary checks its own /readyz.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/prescripto", "health"]
ENTRYPOINT ["/prescripto"]
CMD ["serve"]
