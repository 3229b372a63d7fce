#!/usr/bin/env python3
"""Write a small, real, multi-layer OCI image layout, without network.

    make_oci_layout.py DIR TAG [--layers N] [--seed S] [--arch ARCH]

DIR gets oci-layout, index.json (one manifest, ref.name TAG) and
blobs/sha256/: N gzip'd tar layers of pseudo-random files (reproducible
from the seed: same seed, same bytes), an image config whose diff_ids are
the sha256 of the uncompressed tars, and an OCI image manifest.  Podman can
pull and unpack it; skopeo can copy it.  Prints the manifest digest.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import platform
import random
import tarfile

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def write_blob(root, data):
    digest = hashlib.sha256(data).hexdigest()
    path = os.path.join(root, "blobs", "sha256", digest)
    with open(path, "wb") as f:
        f.write(data)
    return "sha256:" + digest


def tar_layer(rng, index):
    """An uncompressed tar: a directory, a few random files, a text file."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add(name, data=None, mode=0o644, kind=tarfile.REGTYPE):
            info = tarfile.TarInfo(name)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mode = mode
            info.type = kind
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)

        top = "layer%d" % index
        add(top, mode=0o755, kind=tarfile.DIRTYPE)
        for j in range(rng.randint(2, 5)):
            size = rng.randint(1, 200 * 1024)
            add("%s/file%d.bin" % (top, j), rng.randbytes(size))
        text = ("layer %d of a test image\n" % index) * rng.randint(10, 500)
        add("%s/README" % top, text.encode())
    return buf.getvalue()


def big_layer(rng, size):
    """An uncompressed tar of one file of `size` random bytes (gzip cannot
    shrink them: the layer stays about that big)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("big/random.bin")
        info.mtime = 0
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mode = 0o644
        info.size = size
        tar.addfile(info, io.BytesIO(rng.randbytes(size)))
    return buf.getvalue()


def gzip_bytes(data):
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=6) as gz:
        gz.write(data)
    return out.getvalue()


def default_arch():
    m = platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(m, m)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("tag")
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--seed", default="shoal-test-image")
    ap.add_argument("--arch", default=default_arch())
    ap.add_argument("--big-layer", type=int, default=0, metavar="BYTES",
                    help="add a last layer holding BYTES random bytes")
    a = ap.parse_args()

    rng = random.Random(a.seed)
    os.makedirs(os.path.join(a.dir, "blobs", "sha256"), exist_ok=True)

    layers, diff_ids = [], []
    for i in range(a.layers + (1 if a.big_layer > 0 else 0)):
        raw = tar_layer(rng, i) if i < a.layers else big_layer(rng, a.big_layer)
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        gz = gzip_bytes(raw)
        layers.append({"mediaType": MT_LAYER, "digest": write_blob(a.dir, gz), "size": len(gz)})

    config = {
        "created": "1970-01-01T00:00:00Z",
        "architecture": a.arch,
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Cmd": ["/bin/sh"],
                   "Labels": {"org.example.test": a.seed}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "make_oci_layout.py layer %d" % i}
                    for i in range(a.layers)],
    }
    cfg = json.dumps(config, separators=(",", ":")).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, "digest": write_blob(a.dir, cfg), "size": len(cfg)},
        "layers": layers,
        "annotations": {"org.opencontainers.image.title": "shoal test image " + a.seed},
    }
    man = json.dumps(manifest, indent=2).encode()
    man_digest = write_blob(a.dir, man)
    index = {
        "schemaVersion": 2,
        "mediaType": MT_INDEX,
        "manifests": [{"mediaType": MT_MANIFEST, "digest": man_digest, "size": len(man),
                       "annotations": {"org.opencontainers.image.ref.name": a.tag}}],
    }
    with open(os.path.join(a.dir, "index.json"), "w") as f:
        json.dump(index, f)
    with open(os.path.join(a.dir, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    print(man_digest)


if __name__ == "__main__":
    main()
