FROM alpine:3.22
run echo hi
USER 1000
CMD ["true"]
