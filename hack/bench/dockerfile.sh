#!/usr/bin/env bash
# Image size of the sample app (examples/goapp) from `docker k8sprep dockerfile
# init` (scratch final stage) versus a `docker init`-style Dockerfile, plus the
# 1,000-line lint benchmark. Needs `make build images`.
#
# docker init's Go template ends in `FROM alpine:latest` + `apk add
# ca-certificates tzdata` + adduser. No registry is reachable here, so there is
# no alpine image: the comparison uses the same template on the local Debian
# image (hacluster.local/debian:bookworm, which already has CA certificates and
# tzdata), and prints the alpine estimate separately (alpine:3.22 is about
# 8.3 MB, plus about 1.6 MB for ca-certificates and tzdata).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${HACLUSTER_BIN:-$PWD/bin}/docker-k8sprep
GO_IMAGE=${GO_IMAGE:-hacluster.local/golang:1.26}
BASE_IMAGE=${BASE_IMAGE:-hacluster.local/debian:bookworm}
[ -x "$BIN" ] || { echo "missing $BIN: run make build" >&2; exit 1; }
for img in "$GO_IMAGE" "$BASE_IMAGE"; do
  docker image inspect "$img" >/dev/null 2>&1 || { echo "missing image $img: run make images" >&2; exit 1; }
done

work=$(mktemp -d)
id=$$
tags=("k8sprep-bench-scratch:$id" "k8sprep-bench-dockerinit:$id")
cleanup() { docker image rm -f "${tags[@]}" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

mkdir -p "$work/gen" "$work/init"
cp -r examples/goapp/. "$work/gen/" && rm -f "$work/gen/Dockerfile"
cp -r examples/goapp/. "$work/init/" && rm -f "$work/init/Dockerfile"

t0=$(date +%s.%N)
"$BIN" dockerfile init "$work/gen" --builder-image "$GO_IMAGE" --buildkit=false >/dev/null
t1=$(date +%s.%N)
gen=$("$BIN" build "$work/gen" -t "${tags[0]}" --progress quiet -o json)
t2=$(date +%s.%N)

cat >"$work/init/Dockerfile" <<DOCKERFILE
# docker init's Go template, without the BuildKit-only parts (RUN --mount,
# --platform), which the classic builder of this engine rejects.
ARG GO_IMAGE=$GO_IMAGE
FROM \${GO_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download -x
COPY . .
RUN CGO_ENABLED=0 go build -o /bin/server .

# docker init: FROM alpine:latest + apk add ca-certificates tzdata
FROM $BASE_IMAGE AS final
ARG UID=10001
RUN useradd --no-create-home --home-dir /nonexistent --shell /sbin/nologin --uid "\${UID}" appuser
USER appuser
COPY --from=build /bin/server /bin/
COPY config.toml /config.toml
EXPOSE 8080
ENTRYPOINT [ "/bin/server" ]
DOCKERFILE
t3=$(date +%s.%N)
ref=$("$BIN" build "$work/init" -t "${tags[1]}" --no-lint --progress quiet -o json)
t4=$(date +%s.%N)

field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[sys.argv[1]])' "$1"; }
gsize=$(field size <<<"$gen"); glayers=$(field layers <<<"$gen")
rsize=$(field size <<<"$ref"); rlayers=$(field layers <<<"$ref")
mb() { awk -v b="$1" 'BEGIN{printf "%.2f MB", b/1000000}'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f s", b-a}'; }

echo "dockerfile init:                  $(secs "$t0" "$t1")"
echo "k8sprep (scratch final stage):    $(mb "$gsize"), $glayers layers, build $(secs "$t1" "$t2")"
echo "docker init style (debian final): $(mb "$rsize"), $rlayers layers, build $(secs "$t3" "$t4")"
bsize=$(docker image inspect -f '{{.Size}}' "$BASE_IMAGE")
echo "docker init style (alpine final): not buildable here (no registry); estimate $(mb $((rsize - bsize + 9900000))) = its layers above $BASE_IMAGE + alpine:3.22 (8.3 MB) + ca-certificates/tzdata (1.6 MB)"
if [ "$gsize" -gt 15000000 ]; then echo "FAIL: the generated image is larger than 15 MB" >&2; exit 1; fi

echo "lint of a 1,000-line Dockerfile (target < 50 ms):"
go test -run '^$' -bench 'BenchmarkLint1000Lines' -benchtime 20x ./pkg/dockerfile | awk '/^Benchmark/ {printf "  %s: %.2f ms/op\n", $1, $3/1e6}'
