FROM alpine:3.22
WORKDIR app
USER 1000
CMD ["true"]
