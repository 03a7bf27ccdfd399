"""The Postgres image the fixtures start (the `ferrograph_postgres_image` ini option; in
`make test-containers` the image scripts/postgres-image.sh builds from Debian's packages) keeps the
official postgres image's contract: POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB on first
start, password authentication over TCP, /docker-entrypoint-initdb.d scripts, `psql` on PATH, and
a clear refusal to start without a password."""

from __future__ import annotations

import io
import tarfile
import time
from typing import Any, Iterator, Optional

import pytest

INIT_SQL = b"CREATE TABLE made_by_init (note text); INSERT INTO made_by_init VALUES ('ran');\n"


def tar_of(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def docker_client(postgres_image: str) -> Iterator[Any]:
    import docker

    client = docker.from_env()
    try:
        yield client
    finally:
        client.close()


def run_container(client: Any, image: str, env: dict[str, str], files: Optional[dict[str, bytes]] = None) -> Any:
    container = client.containers.create(
        image, environment=env, ports={"5432/tcp": ("127.0.0.1", None)}, labels={"org.ferrograph.testing": "image-test"}
    )
    for name, data in (files or {}).items():
        container.put_archive("/docker-entrypoint-initdb.d", tar_of(name, data))
    container.start()
    return container


def connect_when_ready(container: Any, **params: Any) -> Any:
    import psycopg

    container.reload()
    port = int(container.ports["5432/tcp"][0]["HostPort"])
    deadline = time.monotonic() + 180
    while True:
        try:
            return psycopg.connect(host="127.0.0.1", port=port, connect_timeout=5, **params)
        except psycopg.OperationalError:
            container.reload()
            assert container.status == "running", container.logs().decode()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_user_password_database_and_init_scripts(docker_client, postgres_image):
    import psycopg

    password = "p@ss 'word\""
    container = run_container(
        docker_client,
        postgres_image,
        {"POSTGRES_USER": "owner", "POSTGRES_PASSWORD": password, "POSTGRES_DB": "app-db"},
        {"10-table.sql": INIT_SQL},
    )
    try:
        with connect_when_ready(container, user="owner", password=password, dbname="app-db") as conn:
            assert conn.execute("SELECT current_user, current_database()").fetchone() == ("owner", "app-db")
            assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = 'owner'").fetchone() == (True,)
            assert conn.execute("SELECT note FROM made_by_init").fetchall() == [("ran",)]
            port = conn.info.port
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(host="127.0.0.1", port=port, user="owner", password="wrong", dbname="app-db")
        # testcontainers' readiness check runs psql inside the container.
        code, output = container.exec_run(
            ["sh", "-c", "PGPASSWORD=\"$POSTGRES_PASSWORD\" psql -h 127.0.0.1 -U owner -d app-db -Atc 'SELECT 41 + 1'"]
        )
        assert (code, output.strip()) == (0, b"42"), output
    finally:
        container.remove(force=True, v=True)


def test_the_database_defaults_to_the_user_name(docker_client, postgres_image):
    container = run_container(docker_client, postgres_image, {"POSTGRES_USER": "solo", "POSTGRES_PASSWORD": "pw"})
    try:
        with connect_when_ready(container, user="solo", password="pw", dbname="solo") as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("solo",)
    finally:
        container.remove(force=True, v=True)


def test_no_password_is_refused_with_the_reason(docker_client, postgres_image):
    container = run_container(docker_client, postgres_image, {})
    try:
        result = container.wait(timeout=120)
        assert result["StatusCode"] != 0
        assert b"POSTGRES_PASSWORD" in container.logs()
    finally:
        container.remove(force=True, v=True)
