FROM golang:1.26.0 AS build
WORKDIR /src
COPY ./ ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
RUN --mount=type=cache,target=/go/pkg/mod CGO_ENABLED=0 go build -o /out/app .
FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/
COPY --from=build /out/app /app
USER 65532
ENTRYPOINT ["/app"]
