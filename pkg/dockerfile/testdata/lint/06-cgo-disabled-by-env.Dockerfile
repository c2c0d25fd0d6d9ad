FROM golang:1.26.0 AS build
ENV CGO_ENABLED=0
WORKDIR /src
COPY . .
RUN go build -mod=vendor -o /app .
FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/
COPY --from=build /app /app
USER 65532
ENTRYPOINT ["/app"]
