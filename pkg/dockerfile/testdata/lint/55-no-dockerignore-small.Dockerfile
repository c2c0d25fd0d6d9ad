# A small context needs no .dockerignore.
FROM golang:1.26.0 AS build
WORKDIR /src
COPY . .
RUN CGO_ENABLED=0 go build -o /out/tiny .
FROM scratch
COPY --from=build /out/tiny /tiny
USER 65532
ENTRYPOINT ["/tiny"]
