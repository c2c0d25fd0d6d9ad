# CopyIgnoredFile on expanded paths only.
ARG OS
FROM alpine:3.22
ARG OS ARCH=amd64
WORKDIR /app
COPY app.env ./
COPY build/${OS}-${ARCH}/tool /usr/local/bin/tool
COPY "build/linux-${ARCH}/app" /usr/local/bin/app
USER 65532
ENTRYPOINT ["/usr/local/bin/app"]
