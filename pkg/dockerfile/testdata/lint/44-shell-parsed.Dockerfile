# RUN scripts are parsed as shell (mvdan.cc/sh), not matched as text.
# k8sprep-ignore-file=DL3059,DL3015,DL3009
FROM debian:12 AS base
# A | inside quotes or a case pattern is not a pipe.
RUN sed -i 's|http://deb|https://deb|g' /etc/apt/sources.list
RUN case "$(uname -m)" in x86_64|amd64) echo amd64 ;; *) echo other ;; esac
# cd inside a string run by su is not this shell's cd.
RUN su -c "cd /tmp && make" nobody
# cd after do, or in a subshell, is.
RUN for d in a b; do cd "$d"; done
RUN (cd /usr/src && make)
# Local .deb files need no version; packages across heredoc lines do.
RUN apt-get install -y ./local.deb /tmp/other.deb
RUN <<EOT
set -e
apt-get install -y \
    curl
EOT
RUN curl -fsSL https://example.com/x | sh
FROM golang:1.26.0 AS tools
WORKDIR /src
COPY . .
# A local package is built from the context; @latest is not a version.
RUN go install ./cmd/x
RUN go install golang.org/x/tools/cmd/stringer@latest
FROM base
USER 1000
CMD ["bash"]
