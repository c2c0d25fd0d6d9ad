# hadolint's DL3059 exceptions: different flags, more than two commands.
FROM debian:12
RUN --mount=type=cache,target=/var/lib/apt apt-get update
RUN apt-get install -y --no-install-recommends curl=7.88.1-10+deb12u12 && rm -rf /var/lib/apt/lists/*
RUN ./configure && make && make install
RUN echo a
RUN echo b
USER 1000
CMD ["bash"]
