FROM scratch
COPY --from=busybox:1.36 /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/
COPY app /app
USER 65532
HEALTHCHECK CMD /app -health
ENTRYPOINT ["/app"]
