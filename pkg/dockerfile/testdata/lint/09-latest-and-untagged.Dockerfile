FROM golang AS a
FROM alpine:latest
USER 1000
CMD ["true"]
