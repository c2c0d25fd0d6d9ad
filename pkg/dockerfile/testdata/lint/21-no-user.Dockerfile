FROM alpine:3.22
CMD ["true"]
