FROM alpine:3.22
ENV MODE production
LABEL maintainer me
USER 1000
CMD ["true"]
