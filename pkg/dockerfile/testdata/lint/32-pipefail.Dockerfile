FROM debian:12 AS a
RUN curl -fsSL https://example.com/x | sh
FROM debian:12
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN curl -fsSL https://example.com/x | sh
USER 1000
CMD ["bash"]
