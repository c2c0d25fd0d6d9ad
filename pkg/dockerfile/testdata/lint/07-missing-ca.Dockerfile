FROM golang:1.26.0 AS build
WORKDIR /src
COPY . .
RUN CGO_ENABLED=0 go build -mod=vendor -o /app .
FROM scratch
COPY --from=build /app /app
USER 65532
ENTRYPOINT ["/app"]
