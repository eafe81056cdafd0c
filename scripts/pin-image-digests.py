#!/usr/bin/env python3
"""Pin the images of a Kustomize overlay by digest: ask the registry for the digest of a tag.

    scripts/pin-image-digests.py deploy/k8s/overlays/prod --tag 1.4.2
    scripts/pin-image-digests.py deploy/k8s/overlays/prod --image fixloop/orders=1.4.3 --dry-run

For every entry of the overlay's ``images:`` list (``name``, ``newName`` and ``digest`` or
``newTag``), the image ``newName:<tag>`` is looked up with the registry's HTTP API (the OCI
Distribution API: ``HEAD /v2/<repository>/manifests/<tag>``, answer header
``Docker-Content-Digest``; the digest of a multi-platform image is the digest of its index), and
the entry is rewritten to ``digest: sha256:<64 hex>`` (a ``newTag`` line is replaced). Nothing
else in the file changes, comments included.

Registries that want a login answer 401 with a ``WWW-Authenticate: Bearer realm=...`` challenge;
the script then fetches a token from that realm, anonymously or, when ``REGISTRY_USERNAME`` and
``REGISTRY_PASSWORD`` are set, with those credentials (a registry token or robot account). Names
without a registry host are Docker Hub's (``registry-1.docker.io``, ``library/`` for one-word
names). Needs network access to the registry; uses the standard library only.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
DOCKER_HUB = "registry-1.docker.io"
TIMEOUT_SECONDS = 30


class PinError(Exception):
    """A digest could not be found or written; the message says which and why."""


@dataclass(frozen=True)
class ImageEntry:
    """One entry of a kustomization's ``images:`` list."""

    name: str
    new_name: str | None
    digest: str | None
    new_tag: str | None

    @property
    def reference(self) -> str:
        """The image the digest is looked up for (``newName`` or else ``name``)."""
        return self.new_name or self.name


_ENTRY_START = re.compile(r"^(?P<indent>\s*)- name:\s*(?P<value>\S+)\s*$")
_FIELD = re.compile(r"^(?P<indent>\s+)(?P<key>newName|newTag|digest):\s*(?P<value>\S+)\s*$")


def _match_entry(line: str) -> re.Match[str]:
    match = _ENTRY_START.match(line)
    if match is None:
        raise PinError(f"not an images: entry: {line!r}")
    return match


def _entry_blocks(lines: Sequence[str]) -> list[tuple[int, int]]:
    """(first, end) line indices of each entry of the top-level ``images:`` list."""
    try:
        start = lines.index("images:") + 1
    except ValueError:
        raise PinError("the kustomization has no top-level images: list") from None
    blocks: list[tuple[int, int]] = []
    index = start
    while index < len(lines):
        line = lines[index]
        if line and not line.startswith((" ", "#")):
            break  # the next top-level key
        if _ENTRY_START.match(line):
            end = index + 1
            while end < len(lines) and _FIELD.match(lines[end]):
                end += 1
            blocks.append((index, end))
            index = end
        else:
            index += 1
    return blocks


def image_entries(text: str) -> list[ImageEntry]:
    """The entries of the kustomization's ``images:`` list."""
    lines = text.splitlines()
    entries = []
    for first, end in _entry_blocks(lines):
        start = _match_entry(lines[first])
        matches = (_FIELD.match(line) for line in lines[first + 1 : end])
        fields = {m["key"]: m["value"] for m in matches if m}
        entries.append(
            ImageEntry(
                name=start["value"],
                new_name=fields.get("newName"),
                digest=fields.get("digest"),
                new_tag=fields.get("newTag"),
            )
        )
    return entries


def pin(text: str, digests: Mapping[str, str]) -> str:
    """``text`` with the entry named ``name`` set to ``digest: <digests[name]>`` (any
    ``newTag`` or earlier ``digest`` of it replaced); entries not in ``digests`` unchanged."""
    for name, digest in digests.items():
        if not DIGEST.fullmatch(digest):
            raise PinError(f"{name}: {digest!r} is not a sha256 digest")
    lines = text.splitlines()
    found: set[str] = set()
    for first, end in reversed(_entry_blocks(lines)):
        start = _match_entry(lines[first])
        name = start["value"]
        if name not in digests:
            continue
        found.add(name)
        body = [line for line in lines[first + 1 : end] if not re.search(r"(newTag|digest):", line)]
        indent = start["indent"] + "  "
        lines[first + 1 : end] = [*body, f"{indent}digest: {digests[name]}"]
    missing = set(digests) - found
    if missing:
        raise PinError(f"no images: entry named {', '.join(sorted(missing))}")
    return "\n".join(lines) + ("\n" if text.endswith("\n") else "")


def split_reference(reference: str) -> tuple[str, str]:
    """(registry host, repository) of an image name without tag or digest."""
    first, _, rest = reference.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return DOCKER_HUB, reference if rest else f"library/{reference}"


Opener = Callable[[urllib.request.Request], tuple[int, Mapping[str, str], bytes]]


def urlopen(request: urllib.request.Request) -> tuple[int, Mapping[str, str], bytes]:
    """Status, headers and body of one HTTP request (error statuses included)."""
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items()), exc.read()


def _challenge(header: str) -> dict[str, str]:
    scheme, _, params = header.partition(" ")
    if scheme.lower() != "bearer":
        raise PinError(f"unsupported registry authentication {scheme!r}")
    return dict(re.findall(r'(\w+)="([^"]*)"', params))


def _token(challenge: Mapping[str, str], opener: Opener) -> str:
    realm = challenge.get("realm")
    if not realm:
        raise PinError("the registry's login challenge names no realm")
    query = {k: v for k, v in challenge.items() if k in ("service", "scope")}
    request = urllib.request.Request(f"{realm}?{urllib.parse.urlencode(query)}")  # noqa: S310
    username, password = os.environ.get("REGISTRY_USERNAME"), os.environ.get("REGISTRY_PASSWORD")
    if username and password:
        basic = base64.b64encode(f"{username}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {basic}")
    status, _, body = opener(request)
    if status != 200:
        raise PinError(f"the registry's token service answered {status}")

    answer = json.loads(body)
    token = answer.get("token") or answer.get("access_token")
    if not isinstance(token, str):
        raise PinError("the registry's token service gave no token")
    return token


def resolve_digest(
    reference: str, tag: str, *, opener: Opener = urlopen, scheme: str = "https"
) -> str:
    """The digest the registry gives for ``reference:tag`` (an index for multi-platform
    images, so every platform stays pinned)."""
    host, repository = split_reference(reference)
    url = f"{scheme}://{host}/v2/{repository}/manifests/{urllib.parse.quote(tag)}"
    headers = {"Accept": MANIFEST_TYPES}
    for attempt in range(2):
        request = urllib.request.Request(url, headers=headers, method="HEAD")  # noqa: S310
        status, answer_headers, _ = opener(request)
        lowered = {k.lower(): v for k, v in answer_headers.items()}
        if status == 401 and attempt == 0 and "www-authenticate" in lowered:
            token = _token(_challenge(lowered["www-authenticate"]), opener)
            headers["Authorization"] = f"Bearer {token}"
            continue
        if status != 200:
            raise PinError(f"{reference}:{tag}: the registry answered {status}")
        digest = lowered.get("docker-content-digest")
        if digest is None:  # the registry does not say: hash the manifest itself
            get = urllib.request.Request(url, headers=headers)  # noqa: S310
            status, _, body = opener(get)
            if status != 200:
                raise PinError(f"{reference}:{tag}: the registry answered {status}")
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if not DIGEST.fullmatch(digest):
            raise PinError(f"{reference}:{tag}: unexpected digest {digest!r}")
        return digest
    raise PinError(f"{reference}:{tag}: the registry refused the login")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("overlay", type=Path, help="directory of the kustomization.yaml")
    parser.add_argument("--tag", help="the released tag of every image of the overlay")
    parser.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="NAME=TAG",
        help="the tag of one image (its images: name), overriding --tag; repeatable",
    )
    parser.add_argument("--dry-run", action="store_true", help="print, do not write")
    parser.add_argument(
        "--plain-http", action="store_true", help="talk HTTP to the registry (a local one)"
    )
    args = parser.parse_args(argv)
    path = args.overlay / "kustomization.yaml"
    text = path.read_text(encoding="utf-8")
    tags = dict(item.split("=", 1) for item in args.image)
    digests: dict[str, str] = {}
    try:
        for entry in image_entries(text):
            tag = tags.pop(entry.name, args.tag)
            if tag is None:
                continue
            digests[entry.name] = resolve_digest(
                entry.reference, tag, scheme="http" if args.plain_http else "https"
            )
            print(f"{entry.reference}:{tag} -> {digests[entry.name]}")  # noqa: T201
        if tags:
            raise PinError(f"no images: entry named {', '.join(sorted(tags))}")
        if not digests:
            raise PinError("nothing to pin: give --tag or --image NAME=TAG")
        pinned = pin(text, digests)
    except PinError as exc:
        print(f"pin-image-digests: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    if not args.dry_run:
        path.write_text(pinned, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
