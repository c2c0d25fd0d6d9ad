FROM alpine:3.22 AS base
FROM alpine:3.22 AS base
FROM alpine:3.22 AS scratch
USER 1000
CMD ["true"]
