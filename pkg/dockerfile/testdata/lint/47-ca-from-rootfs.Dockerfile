# A whole root filesystem copied in brings its CA bundle and /etc/passwd.
FROM alpine:3.22 AS rootfs
RUN apk add --no-cache ca-certificates
FROM golang:1.26.0 AS build
WORKDIR /src
COPY . .
RUN CGO_ENABLED=0 go build -o /out/fetch .
FROM scratch
COPY --from=rootfs / /
COPY --from=build /out/fetch /usr/local/bin/fetch
USER nobody
ENTRYPOINT ["/usr/local/bin/fetch"]
