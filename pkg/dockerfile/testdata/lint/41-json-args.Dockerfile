FROM alpine:3.22
USER 1000
ENTRYPOINT exec /bin/server --verbose
