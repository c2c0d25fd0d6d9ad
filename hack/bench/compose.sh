#!/usr/bin/env bash
# Times `docker k8sprep compose-run` (examples/goapp + MariaDB, images cached)
# until the app answers, side by side with the article's own commands
# (docker network create, docker run MySQL, docker build, docker run the app)
# plus a wait loop, and prints the ratio (goal: at most 1.2x).
#
# Usage: hack/bench/compose.sh [ROUNDS]   (default 5; the median of each side counts)
# Needs: `make build images` and a Docker engine.
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
K8=bench-k8sprep-$ID
MAN=bench-manual-$ID
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("",0)); print(s.getsockname()[1])'; }
PORT_K8=$(free_port)
PORT_MAN=$(free_port)

manual_down() {
	docker rm -f -v "$MAN-app" "$MAN-mysql" >/dev/null 2>&1 || true
	docker network rm "$MAN-net" >/dev/null 2>&1 || true
}
k8_down() { (cd "$APP" && docker k8sprep down --name "$K8" --volumes >/dev/null 2>&1) || true; }
cleanup() {
	manual_down
	k8_down
	docker image rm -f "$MAN-app" "$K8-app:latest" >/dev/null 2>&1 || true
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

ms() { date +%s%3N; }

# Warm-up: both images built once, so every timed run finds them cached.
echo "warming up (building the app image once for each side)" >&2
manual_up; manual_down
k8_up; k8_down

man_times=() k8_times=()
for i in $(seq "$ROUNDS"); do
	t=$(ms); manual_up; man_times+=($(($(ms) - t))); manual_down
	t=$(ms); k8_up; k8_times+=($(($(ms) - t))); k8_down
	echo "round $i: article commands ${man_times[-1]} ms, compose-run ${k8_times[-1]} ms" >&2
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
M=$(median "${man_times[@]}")
K=$(median "${k8_times[@]}")
RATIO=$(awk -v k="$K" -v m="$M" 'BEGIN {printf "%.2f", k/m}')
printf 'compose: article commands + wait loop %d ms, docker k8sprep compose-run %d ms (medians of %d), ratio %sx (goal <= 1.2x)\n' "$M" "$K" "$ROUNDS" "$RATIO"
# A note, not a failure: on a shared 2-core machine one noisy round can tip it.
awk -v r="$RATIO" 'BEGIN {exit !(r <= 1.2)}' || echo "compose: warning: ratio above the 1.2x goal" >&2
