#!/usr/bin/env bash
# Builds a Postgres image for testcontainers on a machine that reaches no container registry,
# from Debian's packages, and makes sure a Docker engine answers. `make test-containers` runs it;
# ferrograph's pytest fixtures then start that image (ini option `ferrograph_postgres_image`).
#
#   scripts/postgres-image.sh           ferrograph-postgres:15, from Debian bookworm
#   scripts/postgres-image.sh 15 17     also ferrograph-postgres:17, from Debian trixie (skipped,
#                                       with a note, when the mirror does not serve trixie)
#   scripts/postgres-image.sh --rebuild 15   build again even if the image is up to date
#
# Idempotent, as root: installs Debian's docker.io and debootstrap only when missing, starts
# dockerd only when no engine answers (it keeps running afterwards; the script says how to stop
# it), and builds an image only when it is absent or was built by another version of this script.
# Prints the name of each image that is ready, one a line (everything else goes to stderr).
#
# The images keep the official postgres image's contract, which testcontainers relies on:
# POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB (and POSTGRES_HOST_AUTH_METHOD,
# POSTGRES_INITDB_ARGS, /docker-entrypoint-initdb.d/*.sql and *.sh) on first start, port 5432,
# data in PGDATA=/var/lib/postgresql/data, and `psql` on PATH (testcontainers' readiness check
# runs it inside the container).
#
# Environment: FERROGRAPH_DEBIAN_MIRROR overrides the mirror, which is otherwise the one this
# machine's apt sources use for bookworm.
set -euo pipefail

IMAGE=ferrograph-postgres
DOCKERD_LOG=/var/log/ferrograph-dockerd.log
# An image records the recipe it was built from; a changed script rebuilds it.
RECIPE=$(sha256sum "$0" | cut -c1-16)

say() { echo "postgres-image: $*" >&2; }
die() { say "error: $*"; exit 1; }

suite_of() {
    case "$1" in
        15) echo bookworm ;;
        17) echo trixie ;;
        *) die "no Debian release is known for Postgres $1 (known: 15 from bookworm, 17 from trixie)" ;;
    esac
}

rebuild=false
versions=()
for arg in "$@"; do
    case "$arg" in
        --rebuild) rebuild=true ;;
        -h | --help) sed -n '2,24s/^# \{0,1\}//p' "$0" >&2; exit 0 ;;
        *) suite_of "$arg" >/dev/null; versions+=("$arg") ;;
    esac
done
[ ${#versions[@]} -gt 0 ] || versions=(15)

[ "$(id -u)" = 0 ] || die "run as root (it installs packages, starts dockerd and runs debootstrap)"

apt_updated=false
apt_install() {
    say "installing $* (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    if ! $apt_updated; then
        apt-get update -qq >&2
        apt_updated=true
    fi
    apt-get install -y -qq --no-install-recommends "$@" >&2
}

engine_answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# ---- the Docker engine
if ! command -v docker >/dev/null || { ! engine_answers && ! command -v dockerd >/dev/null; }; then
    apt_install docker.io
fi
if ! engine_answers; then
    say "no Docker engine answers: starting dockerd (log: $DOCKERD_LOG)"
    # Its own session and no terminal, so it outlives this script and holds none of its output.
    setsid dockerd >"$DOCKERD_LOG" 2>&1 </dev/null &
    for _ in $(seq 60); do
        engine_answers && break
        kill -0 $! 2>/dev/null || die "dockerd exited; its log, $DOCKERD_LOG, ends with: $(tail -5 "$DOCKERD_LOG")"
        sleep 1
    done
    engine_answers || die "dockerd (pid $!) did not answer within 60 s; see $DOCKERD_LOG"
    say "dockerd runs as pid $!; stop it with: kill \$(cat /var/run/docker.pid)"
fi

# ---- the images
mirror_of_bookworm() {
    if [ -n "${FERROGRAPH_DEBIAN_MIRROR:-}" ]; then
        echo "${FERROGRAPH_DEBIAN_MIRROR%/}"
        return
    fi
    local uri
    uri=$(apt-get indextargets --format '$(RELEASE) $(REPO_URI)' 2>/dev/null | awk '$1 == "bookworm" { print $2; exit }')
    [ -n "$uri" ] || die "no apt source of this machine serves bookworm; set FERROGRAPH_DEBIAN_MIRROR to a Debian mirror"
    echo "${uri%/}"
}

image_is_current() {
    [ "$(docker image inspect --format '{{index .Config.Labels "org.ferrograph.recipe"}}' "$1" 2>/dev/null)" = "$RECIPE" ]
}

# The entrypoint, modelled on the official image's docker-entrypoint.sh (same variables, same
# first-start sequence: initdb, a server on the socket only to create the database and run the
# init scripts, then the real server in the foreground).
write_entrypoint() {
    cat >"$1" <<'ENTRYPOINT'
#!/bin/sh
set -eu
if [ "${1#-}" != "$1" ]; then
    set -- postgres "$@"
fi
if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_USER:=postgres}"
    : "${POSTGRES_DB:=$POSTGRES_USER}"
    auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
    if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != trust ]; then
        echo "error: the database is uninitialized and POSTGRES_PASSWORD is not set;" \
             "set it, or POSTGRES_HOST_AUTH_METHOD=trust to allow connections without one" >&2
        exit 1
    fi
    pwfile=""
    if [ -n "${POSTGRES_PASSWORD:-}" ]; then
        pwfile=$(mktemp)
        printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    fi
    # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of arguments, as in the official image
    initdb -D "$PGDATA" --username="$POSTGRES_USER" ${pwfile:+--pwfile="$pwfile"} \
        --auth-local=trust --auth-host="$auth" --encoding=UTF8 --locale=C.UTF-8 ${POSTGRES_INITDB_ARGS:-}
    [ -z "$pwfile" ] || rm -f "$pwfile"
    printf '\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"
    # jit off: the image leaves LLVM out.
    printf "\nlisten_addresses = '*'\njit = off\n" >>"$PGDATA/postgresql.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
    export PGUSER="$POSTGRES_USER"
    if [ "$POSTGRES_DB" != postgres ]; then
        # psql quotes the name (variables are interpolated in its input, not in -c).
        echo 'CREATE DATABASE :"db"' | psql -v ON_ERROR_STOP=1 --no-psqlrc --dbname postgres --set db="$POSTGRES_DB"
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sh) echo "running $f"; . "$f" ;;
            *.sql) echo "running $f"; psql -v ON_ERROR_STOP=1 --no-psqlrc --dbname "$POSTGRES_DB" -f "$f" ;;
            *) [ ! -e "$f" ] || echo "ignoring $f" ;;
        esac
    done
    unset PGUSER
    pg_ctl -D "$PGDATA" -m fast -w stop
    echo "PostgreSQL init process complete; ready for start up."
fi
exec "$@"
ENTRYPOINT
    chmod 755 "$1"
}

build() {
    local version=$1 suite=$2 mirror=$3 root replaced
    replaced=$(docker image inspect --format '{{.Id}}' "$IMAGE:$version" 2>/dev/null || true)
    root=$(mktemp -d /var/tmp/ferrograph-postgres-root.XXXXXX)
    # shellcheck disable=SC2064 # the path is fixed now
    trap "rm -rf '$root'" EXIT
    say "building $IMAGE:$version: debootstrap $suite from $mirror (about a minute)"
    debootstrap --variant=minbase --include=postgresql "$suite" "$root" "$mirror" >"$root.log" 2>&1 \
        || die "debootstrap failed; the end of its log ($root.log):$(printf '\n'; tail -20 "$root.log")"
    rm -f "$root.log"
    local got
    got=$(ls "$root/usr/lib/postgresql")
    [ "$got" = "$version" ] || die "$suite's postgresql is version $got, not $version"
    # The cluster the package made, its snakeoil key, and what a server in a container never reads.
    rm -rf "$root"/var/lib/postgresql/* "$root"/etc/postgresql/* "$root"/var/log/postgresql/* \
        "$root"/etc/ssl/private/ssl-cert-snakeoil.key "$root"/etc/ssl/certs/ssl-cert-snakeoil.pem \
        "$root"/usr/share/doc "$root"/usr/share/man "$root"/usr/share/info "$root"/usr/share/locale \
        "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/var/cache/debconf/*-old \
        "$root"/usr/lib/postgresql/*/lib/llvmjit* "$root"/usr/lib/postgresql/*/lib/bitcode \
        "$root"/usr/lib/*-linux-gnu/libLLVM* "$root"/usr/lib/*-linux-gnu/libz3.* "$root"/usr/share/i18n
    write_entrypoint "$root/usr/local/bin/docker-entrypoint.sh"
    mkdir -p "$root/docker-entrypoint-initdb.d"
    tar -C "$root" -c . | docker import \
        --change "ENV PATH=/usr/lib/postgresql/$version/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        --change 'ENV PGDATA=/var/lib/postgresql/data' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
        --change 'CMD ["postgres"]' \
        --change 'EXPOSE 5432' \
        --change "LABEL org.ferrograph.recipe=$RECIPE org.ferrograph.debian-suite=$suite" \
        - "$IMAGE:$version" >/dev/null
    rm -rf "$root"
    trap - EXIT
    # The image this one replaces, unless a container still uses it.
    if [ -n "$replaced" ] && [ "$replaced" != "$(docker image inspect --format '{{.Id}}' "$IMAGE:$version")" ]; then
        docker image rm "$replaced" >/dev/null 2>&1 || true
    fi
    say "built $IMAGE:$version ($(docker image inspect --format '{{.Size}}' "$IMAGE:$version" | awk '{ printf "%d MB", $1 / 1e6 }'))"
}

mirror=""
for version in "${versions[@]}"; do
    name="$IMAGE:$version"
    if ! $rebuild && image_is_current "$name"; then
        say "$name is up to date"
        echo "$name"
        continue
    fi
    suite=$(suite_of "$version")
    [ -n "$mirror" ] || mirror=$(mirror_of_bookworm)
    command -v debootstrap >/dev/null || apt_install debootstrap # brings wget
    if ! wget -q -O /dev/null "$mirror/dists/$suite/Release"; then
        [ "$version" != 15 ] || die "the mirror $mirror does not serve $suite"
        say "skipping $name: the mirror $mirror does not serve $suite"
        continue
    fi
    build "$version" "$suite" "$mirror"
    echo "$name"
done
