# With ! exceptions in .dockerignore BuildKit does not judge: neither do we.
FROM alpine:3.22
WORKDIR /app
COPY go.mod go.sum ./
COPY cmd/ ./cmd/
USER 65532
ENTRYPOINT ["/app/cmd/x"]
