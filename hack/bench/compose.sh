#!/usr/bin/env bash
# Times `docker k8sprep compose-run` (examples/goapp + MariaDB, images cached)
# until the app answers, side by side with the article's own commands
# (docker network create, docker run MySQL, docker build, docker run the app)
# plus a wait loop, and prints the ratio (goal: at most 1.2x); then
# docker-compose on the same stack (a compose.yaml with the same images and
# settings, `up -d --build`, the app waiting for a healthy database through
# depends_on: condition: service_healthy, then the same wait loop).
#
# Usage: hack/bench/compose.sh [ROUNDS]   (default 5; the median of each side counts)
# Needs: `make build images` and a Docker engine; docker-compose (or `docker
# compose`) for the third side, which is skipped with a note without it.
# BENCH_PREFIX (default bench) starts every container, network and volume name.
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ROUNDS=${1:-5}
MYSQL_IMAGE=hacluster.local/mariadb:10.11
PLUGIN=${K8SPREP_PLUGIN:-$ROOT/bin/docker-k8sprep}
[ -x "$PLUGIN" ] || (cd "$ROOT" && go build -o bin/ ./cmd/docker-k8sprep)
docker image inspect "$MYSQL_IMAGE" hacluster.local/golang:1.26 >/dev/null || { echo "run \`make images\` first" >&2; exit 1; }

WORK=$(mktemp -d)
export DOCKER_CONFIG=$WORK/docker-config
mkdir -p "$DOCKER_CONFIG/cli-plugins"
ln -s "$PLUGIN" "$DOCKER_CONFIG/cli-plugins/docker-k8sprep"
# One copy per side: compose-run adds .k8sprep/ to its folder, which would
# change the article side's build context and defeat its layer cache.
APP=$WORK/goapp
APP_MAN=$WORK/goapp-manual
mkdir -p "$APP" "$APP_MAN"
cp "$ROOT"/examples/goapp/* "$APP"/
cp "$ROOT"/examples/goapp/* "$APP_MAN"/
ID=$$
PREFIX=${BENCH_PREFIX:-bench}
K8=$PREFIX-k8sprep-$ID
MAN=$PREFIX-manual-$ID
CMP=$PREFIX-compose-$ID
APP_CMP=$WORK/goapp-compose
mkdir -p "$APP_CMP"
cp "$ROOT"/examples/goapp/* "$APP_CMP"/
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("",0)); print(s.getsockname()[1])'; }
PORT_K8=$(free_port)
PORT_MAN=$(free_port)
PORT_CMP=$(free_port)

# docker-compose v1 or the compose plugin, whichever is installed.
COMPOSE=()
if command -v docker-compose >/dev/null; then
	COMPOSE=(docker-compose)
elif docker compose version >/dev/null 2>&1; then
	COMPOSE=(docker compose)
fi
# The same stack for compose: the article's settings, a health check that
# asks over TCP as the app's user (the first-start server does not listen on
# TCP) every 500 ms, and the app started once it passes. The compose file
# sits outside the build context, so the context is the same every round.
cat >"$WORK/compose.yaml" <<YAML
services:
  db:
    image: $MYSQL_IMAGE
    environment:
      MYSQL_ROOT_PASSWORD: rootpw
      MYSQL_DATABASE: app
      MYSQL_USER: app
      MYSQL_PASSWORD: apppw
    healthcheck:
      test: ["CMD", "mariadb", "--protocol=tcp", "-h127.0.0.1", "-uapp", "-papppw", "app", "-e", "SELECT 1"]
      interval: 500ms
      timeout: 5s
      retries: 240
  app:
    build: $APP_CMP
    image: $CMP-app
    ports: ["$PORT_CMP:8080"]
    environment:
      DB_HOST: db
      DB_PORT: "3306"
      DB_USER: app
      DB_PASSWORD: apppw
      DB_NAME: app
    depends_on:
      db:
        condition: service_healthy
YAML
compose() { "${COMPOSE[@]}" -p "$CMP" -f "$WORK/compose.yaml" "$@"; }

manual_down() {
	docker rm -f -v "$MAN-app" "$MAN-mysql" >/dev/null 2>&1 || true
	docker network rm "$MAN-net" >/dev/null 2>&1 || true
}
k8_down() { (cd "$APP" && docker k8sprep down --name "$K8" --volumes >/dev/null 2>&1) || true; }
compose_down() { [ ${#COMPOSE[@]} -eq 0 ] || compose down -v >/dev/null 2>&1 || true; }
cleanup() {
	manual_down
	k8_down
	compose_down
	docker image rm -f "$MAN-app" "$K8-app:latest" "$CMP-app" >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

# The article's way: names and passwords on the command line, then wait.
manual_up() {
	docker network create "$MAN-net" >/dev/null
	docker run -d --name "$MAN-mysql" --network "$MAN-net" -p 127.0.0.1::3306 \
		-e MYSQL_ROOT_PASSWORD=rootpw -e MYSQL_DATABASE=app -e MYSQL_USER=app -e MYSQL_PASSWORD=apppw \
		"$MYSQL_IMAGE" >/dev/null
	docker build -q -t "$MAN-app" "$APP_MAN" >/dev/null 2>&1
	until docker exec "$MAN-mysql" mariadb --protocol=tcp -h127.0.0.1 -uapp -papppw app -e 'SELECT 1' >/dev/null 2>&1; do sleep 0.2; done
	docker run -d --name "$MAN-app" --network "$MAN-net" -p "$PORT_MAN:8080" \
		-e DB_HOST="$MAN-mysql" -e DB_PORT=3306 -e DB_USER=app -e DB_PASSWORD=apppw -e DB_NAME=app \
		"$MAN-app" >/dev/null
	until curl -fsS "http://127.0.0.1:$PORT_MAN/healthz" >/dev/null 2>&1; do sleep 0.1; done
}

k8_up() {
	(cd "$APP" && docker k8sprep compose-run --name "$K8" --mysql-image "$MYSQL_IMAGE" --port "$PORT_K8:8080" -q >/dev/null)
	curl -fsS "http://127.0.0.1:$PORT_K8/healthz" >/dev/null
}

compose_up() {
	compose up -d --build >/dev/null 2>&1
	until curl -fsS "http://127.0.0.1:$PORT_CMP/healthz" >/dev/null 2>&1; do sleep 0.1; done
}

ms() { date +%s%3N; }

# Warm-up: both images built once, so every timed run finds them cached.
echo "warming up (building the app image once for each side)" >&2
manual_up; manual_down
k8_up; k8_down
if [ ${#COMPOSE[@]} -gt 0 ]; then
	compose_up; compose_down
fi

man_times=() k8_times=() cmp_times=()
for i in $(seq "$ROUNDS"); do
	t=$(ms); manual_up; man_times+=($(($(ms) - t))); manual_down
	t=$(ms); k8_up; k8_times+=($(($(ms) - t))); k8_down
	line="round $i: article commands ${man_times[-1]} ms, compose-run ${k8_times[-1]} ms"
	if [ ${#COMPOSE[@]} -gt 0 ]; then
		t=$(ms); compose_up; cmp_times+=($(($(ms) - t))); compose_down
		line+=", ${COMPOSE[*]} ${cmp_times[-1]} ms"
	fi
	echo "$line" >&2
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
M=$(median "${man_times[@]}")
K=$(median "${k8_times[@]}")
RATIO=$(awk -v k="$K" -v m="$M" 'BEGIN {printf "%.2f", k/m}')
printf 'compose: article commands + wait loop %d ms, docker k8sprep compose-run %d ms (medians of %d), ratio %sx (goal <= 1.2x)\n' "$M" "$K" "$ROUNDS" "$RATIO"
# A note, not a failure: on a shared 2-core machine one noisy round can tip it.
awk -v r="$RATIO" 'BEGIN {exit !(r <= 1.2)}' || echo "compose: warning: ratio above the 1.2x goal" >&2
if [ ${#COMPOSE[@]} -gt 0 ]; then
	C=$(median "${cmp_times[@]}")
	printf 'compose: %s up -d --build (healthy db, then the app) + wait loop %d ms (median of %d), compose-run/%s %sx\n' \
		"${COMPOSE[*]}" "$C" "$ROUNDS" "${COMPOSE[*]}" "$(awk -v k="$K" -v c="$C" 'BEGIN {printf "%.2f", k/c}')"
else
	echo "compose: docker-compose is not installed: no third side" >&2
fi
