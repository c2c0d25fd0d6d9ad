# DL3029 is BuildKit's FromPlatformFlagConstDisallowed: a constant after expansion.
ARG PLATFORM=linux/arm64
ARG ALPINE_TAG
FROM --platform=${PLATFORM} alpine:3.22 AS from-arg
FROM --platform=linux/arm64 alpine:3.22 AS build-arm64
FROM --platform=linux/amd64 alpine:3.22 AS pinned
FROM alpine:${ALPINE_TAG}
USER 1000
CMD ["true"]
