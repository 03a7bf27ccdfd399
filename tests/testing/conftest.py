from __future__ import annotations

import pytest

from ferrograph.testing.plugin import ENV_URL


@pytest.fixture
def postgres_server(monkeypatch: pytest.MonkeyPatch, ferrograph_postgres_server: str) -> str:
    """This session's Postgres server (its maintenance database), also handed to the test's
    pytester sessions through FERROGRAPH_TEST_POSTGRES_URL: they use it rather than each start a
    container of their own."""
    monkeypatch.setenv(ENV_URL, ferrograph_postgres_server)
    return ferrograph_postgres_server


@pytest.fixture
def postgres_image(pytestconfig: pytest.Config, monkeypatch: pytest.MonkeyPatch) -> str:
    """The ini option's Postgres image, for tests of the testcontainers path, which run only where
    a Docker engine answers and the image is on this machine (`make test-containers` builds it;
    these tests pull nothing). FERROGRAPH_TEST_POSTGRES_URL is unset for the test."""
    image = pytestconfig.getini("ferrograph_postgres_image")
    try:
        import docker
        from docker.errors import ImageNotFound
    except ImportError as e:
        pytest.skip(f"needs testcontainers ({e.name} is not installed)")
    try:
        client = docker.from_env()
        client.ping()
    except Exception as e:
        pytest.skip(f"needs a Docker engine ({type(e).__name__}: {e})")
    try:
        client.images.get(image)
    except ImageNotFound:
        pytest.skip(f"needs the image {image} on this machine (scripts/postgres-image.sh builds ferrograph-postgres:15)")
    finally:
        client.close()
    monkeypatch.delenv(ENV_URL, raising=False)
    return image
