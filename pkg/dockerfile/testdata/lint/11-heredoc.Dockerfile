FROM debian:12
RUN <<EOT
set -e
cd /tmp
echo hi | tee x
EOT
USER 1000
CMD ["bash"]
