# Seen on public Dockerfiles, and not findings: an image digest is no
# credential, linking busybox's sh provides a shell (DL4005 is for replacing
# it), a pipe inside $(...) does not decide the RUN's status (DL4006).
ARG BASE_IMAGE=docker.io/library/ubuntu:24.04@sha256:f3d28607ddd78734bb7f71f117f3c6706c666b8b76cbff7c9ff6e5718d46ff64
FROM ${BASE_IMAGE}
RUN ln -s /busybox/sh /bin/sh
WORKDIR /src
RUN go mod edit -go=$(grep '^go ' go.mod | cut -f2 -d' ')
USER 1000
CMD ["bash"]
