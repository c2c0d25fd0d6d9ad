FROM scratch
COPY app /app
USER 65532
ENTRYPOINT /app --listen :8080
