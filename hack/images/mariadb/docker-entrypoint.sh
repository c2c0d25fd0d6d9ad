#!/bin/bash
# Entrypoint of hacluster.local/mariadb: initialises an empty /var/lib/mysql
# the way the official mysql image does, then runs the server as PID 1.
#
# Honoured (each also as <NAME>_FILE, read from a file such as a secret, and
# with the MARIADB_ spelling instead of MYSQL_):
#   MYSQL_ROOT_PASSWORD, MYSQL_ALLOW_EMPTY_PASSWORD, MYSQL_RANDOM_ROOT_PASSWORD,
#   MYSQL_ROOT_HOST (default %), MYSQL_DATABASE, MYSQL_USER, MYSQL_PASSWORD.
# Scripts in /docker-entrypoint-initdb.d (*.sh, *.sql, *.sql.gz) run once, in
# name order, when the data directory is created. A data directory that is
# already initialised (a volume from an earlier container) is used as is.
set -Eeuo pipefail

DATADIR=/var/lib/mysql
# The initialisation server listens only on the usual socket, so init scripts
# can run `mariadb -uroot -p"$MYSQL_ROOT_PASSWORD"` as with the official image.
INIT_SOCKET=/run/mysqld/mysqld.sock

note() { printf '%s [Note] [Entrypoint]: %s\n' "$(date -u '+%F %T')" "$*"; }
warn() { printf '%s [Warn] [Entrypoint]: %s\n' "$(date -u '+%F %T')" "$*" >&2; }
die() { printf '%s [ERROR] [Entrypoint]: %s\n' "$(date -u '+%F %T')" "$*" >&2; exit 1; }

# setting NAME: sets the shell variable cfg_NAME from MYSQL_NAME, MYSQL_NAME_FILE,
# MARIADB_NAME or MARIADB_NAME_FILE (first one set wins; a variable and its
# _FILE twin together are an error). Like the official image, it exports the
# value as MYSQL_NAME for init scripts and unsets the _FILE variables.
setting() {
	local name=$1 value='' prefix var file
	for prefix in MYSQL MARIADB; do
		var=${prefix}_$name file=${prefix}_${name}_FILE
		if [ -n "${!var:-}" ] && [ -n "${!file:-}" ]; then
			die "both $var and $file are set; use one of them"
		fi
		if [ -n "${!file:-}" ]; then
			[ -r "${!file}" ] || die "$file=${!file}: file not readable"
			value=$(<"${!file}")
			unset "$file"
			break
		fi
		if [ -n "${!var:-}" ]; then
			value=${!var}
			break
		fi
	done
	printf -v "cfg_$name" '%s' "$value"
	if [ -n "$value" ]; then export "MYSQL_$name=$value"; fi
}

# SQL literals: a quoted string and a quoted identifier.
sql_string() {
	local s=${1//\\/\\\\}
	s=${s//\'/\\\'}
	printf "'%s'" "$s"
}
sql_ident() { printf '`%s`' "${1//\`/\`\`}"; }

# Runs SQL from stdin against the init server as root; after the root
# password is set it is passed through a private option file on a pipe.
run_sql() {
	if [ -n "${ROOT_PASSWORD_SET:-}" ]; then
		local pw=${cfg_ROOT_PASSWORD//\\/\\\\}
		pw=${pw//\"/\\\"}
		mariadb --defaults-extra-file=<(printf '[client]\npassword="%s"\n' "$pw") \
			--protocol=socket --socket="$INIT_SOCKET" -uroot --comments "$@"
	else
		mariadb --protocol=socket --socket="$INIT_SOCKET" -uroot --comments "$@"
	fi
}

start_init_server() {
	"$@" --skip-networking --socket="$INIT_SOCKET" --skip-log-bin &
	INIT_PID=$!
	local i
	for i in $(seq 600); do
		if mariadb --protocol=socket --socket="$INIT_SOCKET" -uroot -e 'SELECT 1' >/dev/null 2>&1; then
			return 0
		fi
		kill -0 "$INIT_PID" 2>/dev/null || die "the server exited during initialisation (see its output above)"
		sleep 0.1
	done
	die "the initialisation server did not answer within 60s"
}

stop_init_server() {
	kill -TERM "$INIT_PID"
	wait "$INIT_PID" || die "the initialisation server did not stop cleanly"
}

initialise() {
	setting ROOT_PASSWORD
	setting ALLOW_EMPTY_PASSWORD
	setting RANDOM_ROOT_PASSWORD
	setting ROOT_HOST
	setting DATABASE
	setting USER
	setting PASSWORD
	# MARIADB_ALLOW_EMPTY_ROOT_PASSWORD is the MariaDB spelling.
	: "${cfg_ALLOW_EMPTY_PASSWORD:=${MARIADB_ALLOW_EMPTY_ROOT_PASSWORD:-}}"
	cfg_ROOT_HOST=${cfg_ROOT_HOST:-%}

	if [ -z "$cfg_ROOT_PASSWORD" ] && [ -z "$cfg_ALLOW_EMPTY_PASSWORD" ] && [ -z "$cfg_RANDOM_ROOT_PASSWORD" ]; then
		die "the database is uninitialised and no root password option is set: set one of MYSQL_ROOT_PASSWORD, MYSQL_ROOT_PASSWORD_FILE, MYSQL_ALLOW_EMPTY_PASSWORD or MYSQL_RANDOM_ROOT_PASSWORD"
	fi
	if [ "$cfg_USER" = root ]; then
		die "MYSQL_USER=root: MYSQL_USER and MYSQL_PASSWORD create an ordinary user; set MYSQL_ROOT_PASSWORD for root"
	fi
	if [ -n "$cfg_USER" ] && [ -z "$cfg_PASSWORD" ]; then
		warn "MYSQL_USER is set without MYSQL_PASSWORD: no user is created"
	elif [ -z "$cfg_USER" ] && [ -n "$cfg_PASSWORD" ]; then
		warn "MYSQL_PASSWORD is set without MYSQL_USER: it is ignored"
	fi
	if [ -n "$cfg_RANDOM_ROOT_PASSWORD" ] && [ -z "$cfg_ROOT_PASSWORD" ]; then
		cfg_ROOT_PASSWORD=$(head -c 48 /dev/urandom | base64 -w0)
		cfg_ROOT_PASSWORD=${cfg_ROOT_PASSWORD//[^A-Za-z0-9]/}
		cfg_ROOT_PASSWORD=${cfg_ROOT_PASSWORD:0:32}
		note "GENERATED ROOT PASSWORD: $cfg_ROOT_PASSWORD"
	fi

	note "initialising the data directory $DATADIR"
	mariadb-install-db --user=mysql --datadir="$DATADIR" --skip-test-db \
		--auth-root-authentication-method=normal --skip-name-resolve >/dev/null \
		|| die "mariadb-install-db failed"
	start_init_server "$@"

	# Keep only root@localhost and the system account, then give root its
	# password and the configured remote host.
	{
		echo "SET @@SESSION.SQL_LOG_BIN=0;"
		echo "DELETE FROM mysql.global_priv WHERE User NOT IN ('root', 'mariadb.sys') OR (User = 'root' AND Host <> 'localhost');"
		echo "DELETE FROM mysql.proxies_priv WHERE Host <> 'localhost';"
		echo "FLUSH PRIVILEGES;"
		echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $(sql_string "$cfg_ROOT_PASSWORD");"
		if [ "$cfg_ROOT_HOST" != localhost ]; then
			echo "CREATE USER 'root'@$(sql_string "$cfg_ROOT_HOST") IDENTIFIED BY $(sql_string "$cfg_ROOT_PASSWORD");"
			echo "GRANT ALL PRIVILEGES ON *.* TO 'root'@$(sql_string "$cfg_ROOT_HOST") WITH GRANT OPTION;"
		fi
		if [ -n "$cfg_DATABASE" ]; then
			echo "CREATE DATABASE IF NOT EXISTS $(sql_ident "$cfg_DATABASE");"
		fi
		if [ -n "$cfg_USER" ] && [ -n "$cfg_PASSWORD" ]; then
			echo "CREATE USER $(sql_string "$cfg_USER")@'%' IDENTIFIED BY $(sql_string "$cfg_PASSWORD");"
			if [ -n "$cfg_DATABASE" ]; then
				echo "GRANT ALL PRIVILEGES ON $(sql_ident "$cfg_DATABASE").* TO $(sql_string "$cfg_USER")@'%';"
			fi
		fi
	} | run_sql || die "setting up users and the database failed"
	ROOT_PASSWORD_SET=1

	local f
	for f in /docker-entrypoint-initdb.d/*; do
		[ -e "$f" ] || continue
		case "$f" in
		*.sh)
			if [ -x "$f" ]; then
				note "running $f"
				"$f" || die "$f failed"
			else
				note "sourcing $f"
				# shellcheck disable=SC1090
				. "$f"
			fi
			;;
		*.sql)
			note "running $f"
			run_sql ${cfg_DATABASE:+"$cfg_DATABASE"} <"$f" || die "$f failed"
			;;
		*.sql.gz)
			note "running $f"
			gzip -dc "$f" | run_sql ${cfg_DATABASE:+"$cfg_DATABASE"} || die "$f failed"
			;;
		*) warn "ignoring $f (not *.sh, *.sql or *.sql.gz)" ;;
		esac
	done

	stop_init_server
	unset cfg_ROOT_PASSWORD cfg_PASSWORD
	note "initialisation done; starting the server"
}

# `docker run IMAGE --option` passes options to the server.
if [ "${1:0:1}" = - ]; then
	set -- mariadbd "$@"
fi
# Anything else (`docker run IMAGE mariadb -h db ...`) runs as given.
if [ "$1" != mariadbd ] && [ "$1" != mysqld ]; then
	exec "$@"
fi

if [ "$(id -u)" = 0 ]; then
	install -d -o mysql -g mysql -m 0755 /run/mysqld
	chown mysql:mysql "$DATADIR"
fi
if [ ! -d "$DATADIR/mysql" ]; then
	initialise "$@"
else
	note "the data directory $DATADIR is already initialised; skipping initialisation"
fi
exec "$@"
