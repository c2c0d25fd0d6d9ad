FROM scratch
COPY --from=busybox:1.36 /etc/ssl /etc/ssl
USER app
ENTRYPOINT ["/app"]
