# One image for the daemon and the workers (CPU engines). For GPU workers build FROM an
# NVIDIA CUDA/TensorRT base instead and `pip install '.[gpu]'`; see docs/deploy.md.
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 990 --home-dir /var/lib/vidwatch --shell /usr/sbin/nologin vidwatch \
 && install -d -o vidwatch -g vidwatch /var/lib/vidwatch

WORKDIR /opt/vidwatch
COPY pyproject.toml README.md ./
COPY vidwatch ./vidwatch
RUN pip install --no-cache-dir .

USER vidwatch
ENV PYTHONUNBUFFERED=1
CMD ["vidwatch", "daemon"]
