# The program listens on its -port flag's default, 80.
FROM golang:1.26.0 AS build
WORKDIR /src
COPY . .
RUN CGO_ENABLED=0 go build -o /web .
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /web /web
EXPOSE 8080
ENTRYPOINT ["/web"]
