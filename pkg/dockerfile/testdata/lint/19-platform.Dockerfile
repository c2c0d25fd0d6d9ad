FROM --platform=linux/amd64 alpine:3.22 AS a
FROM --platform=$TARGETPLATFORM alpine:3.22
FROM --platform=$BUILDPLATFORM golang:1.26.0 AS b
USER 1000
CMD ["true"]
