# EXPOSE is part of the image config: a stage built FROM another keeps it.
FROM golang:1.26.0 AS build
WORKDIR /src
COPY . .
RUN CGO_ENABLED=0 go build -o /web .
FROM gcr.io/distroless/static-debian12:nonroot AS base
EXPOSE 80
FROM base
COPY --from=build /web /web
ENTRYPOINT ["/web"]
