# cgo is on (Debian golang image, no CGO_ENABLED=0), but the sources in the
# context use nothing that links libc: the binary is static.
FROM golang:1.26.0 AS build
WORKDIR /src
COPY . .
RUN go build -o /out/report .
FROM scratch
COPY --from=build /out/report /report
USER 65532
ENTRYPOINT ["/report"]
