FROM alpine:3.22
ADD main.go /src/
ADD rootfs.tar.gz /
ADD https://example.com/x.bin /x.bin
USER 1000
CMD ["true"]
