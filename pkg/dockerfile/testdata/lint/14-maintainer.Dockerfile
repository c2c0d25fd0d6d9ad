FROM alpine:3.22
MAINTAINER someone@example.com
USER 1000
CMD ["true"]
