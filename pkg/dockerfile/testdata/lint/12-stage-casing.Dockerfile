FROM golang:1.26.0 AS Build
FROM alpine:3.22 as final
COPY --from=Build /x /x
USER 1000
CMD ["/x"]
