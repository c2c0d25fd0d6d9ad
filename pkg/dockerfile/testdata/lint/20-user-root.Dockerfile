FROM alpine:3.22
USER 1000
USER root
CMD ["true"]
