FROM scratch
COPY app /app
RUN chmod +x /app
USER 65532
ENTRYPOINT ["/app"]
