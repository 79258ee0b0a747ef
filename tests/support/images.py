"""Small images for tests that need a server but not a repo2docker build."""

# A repository's Dockerfile that makes a minimal single-user server on the hub's Debian base image:
# its build takes seconds once the pip layer is cached, and every test using it shares that layer.
SERVER_DOCKERFILE = """FROM binderspawner-base:bookworm
RUN useradd --create-home --uid 1000 jovyan \\
 && python3 -m venv /opt/venv \\
 && /opt/venv/bin/pip install --no-cache-dir jupyterhub jupyterlab
ENV PATH=/opt/venv/bin:$PATH HOME=/home/jovyan
COPY --chown=1000:1000 . /home/jovyan
WORKDIR /home/jovyan
USER jovyan
"""
