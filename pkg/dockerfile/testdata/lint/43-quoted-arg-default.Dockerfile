# ARG and ENV values are read as BuildKit reads them: quotes removed.
ARG BASE="scratch"
ARG GO_VERSION='1.26.0'
ARG OS="linux" ARCH="amd64"
FROM golang:${GO_VERSION} AS build
ENV CGO_ENABLED="0"
WORKDIR "/src"
COPY . .
RUN go build -o /out/app .
FROM busybox:1.36-${OS}-"${ARCH}" AS tools
FROM ${BASE}
ENV APP_UID="65532"
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/
COPY --from=build /out/app /app
USER ${APP_UID}:"${APP_UID}"
RUN ["/app", "--version"]
ENTRYPOINT ["/app"]
