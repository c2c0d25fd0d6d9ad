FROM debian:12 AS d
RUN apt-get update && apt-get install -y curl git=1:2.39.5-0+deb12u2
FROM alpine:3.22
RUN apk add curl
RUN apk add --no-cache git=2.49.1-r0
USER 1000
CMD ["true"]
