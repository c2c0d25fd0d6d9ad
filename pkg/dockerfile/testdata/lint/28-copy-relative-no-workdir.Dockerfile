FROM alpine:3.22
COPY app.sh app/
USER 1000
CMD ["true"]
