"""The ``fixloop`` command line: inbound publish, dlq list and replay against the real broker;
``keys new`` / ``keys hash`` (no server needed)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from fixloop_devkit.testing import produce, read_topic, unique
from fixloop_shared.grpc_edge.principals import (
    API_KEY_PREFIX,
    PrincipalDirectory,
    PrincipalSpec,
    hash_api_key,
)
from fixloop_shared.topics import Topic, dead_letter_topic, inbound_topic

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def fixloop(bootstrap: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fixloop_cli", *args, "--bootstrap", bootstrap],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def order(tmp_path: Path, **data: object) -> tuple[Path, str]:
    doc = json.loads((ROOT / "examples" / "orders" / "hvac-breakdown-berlin.json").read_text())
    external_id = f"CLI-{uuid.uuid4().hex[:10]}"
    doc["id"] = str(uuid.uuid4())
    doc["data"].update({"external_id": external_id, **data})
    path = tmp_path / f"{external_id}.json"
    path.write_text(json.dumps(doc))
    return path, external_id


async def test_inbound_publish_sends_a_valid_order_keyed_by_its_external_identity(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    path, external_id = order(tmp_path)
    result = fixloop(kafka_bootstrap, "inbound", "publish", str(path))
    assert result.returncode == 0, result.stderr
    assert "published" in result.stdout
    key = f"acme/fieldhub/{external_id}".encode()
    records = await read_topic(
        kafka_bootstrap,
        inbound_topic("fieldhub"),  # the platform's own topic, from the file's source
        until=lambda rs: any(r.key == key for r in rs),
    )
    sent = [r for r in records if r.key == key]
    assert len(sent) == 1
    assert sent[0].json()["data"]["external_id"] == external_id
    assert sent[0].headers["content-type"] == "application/cloudevents+json"


async def test_inbound_publish_refuses_an_invalid_file_and_names_every_problem(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    good, good_id = order(tmp_path)
    bad, bad_id = order(tmp_path, priority="asap", description={"$ne": None})
    result = fixloop(kafka_bootstrap, "inbound", "publish", str(good), str(bad))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2
    assert all(line.startswith(f"{bad}: invalid (schema-violation): data.") for line in lines)
    assert "Traceback" not in result.stderr
    records = await read_topic(kafka_bootstrap, inbound_topic("fieldhub"), timeout=2)
    # Other tests publish to the same topic in either mode: look for the ids in the raw bytes.
    assert not any(good_id.encode() in (r.value or b"") for r in records)  # nothing published
    assert not any(bad_id.encode() in (r.value or b"") for r in records)


async def test_inbound_publish_sends_to_the_named_platforms_topic_or_the_shared_one(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    path, external_id = order(tmp_path)
    doc = json.loads(path.read_text())
    doc["source"] = "https://fieldhub.example.com/orders"  # a URI names no topic
    path.write_text(json.dumps(doc))

    unnamed = fixloop(kafka_bootstrap, "inbound", "publish", str(path))
    assert unnamed.returncode == 1
    assert "is not a platform name" in unnamed.stderr
    assert "--platform" in unnamed.stderr

    named = fixloop(kafka_bootstrap, "inbound", "publish", str(path), "--platform", "buildmart")
    assert named.returncode == 0, named.stderr
    assert inbound_topic("buildmart") in named.stdout
    key = f"acme/buildmart/{external_id}".encode()
    records = await read_topic(
        kafka_bootstrap, inbound_topic("buildmart"), until=lambda rs: any(r.key == key for r in rs)
    )
    assert [r.json()["data"]["external_id"] for r in records if r.key == key] == [external_id]

    shared = fixloop(kafka_bootstrap, "inbound", "publish", str(path), "--shared-topic")
    assert shared.returncode == 0, shared.stderr
    assert Topic.WORKORDERS_INBOUND.value in shared.stdout

    bad = fixloop(kafka_bootstrap, "inbound", "publish", str(path), "--platform", "Build.Mart")
    assert bad.returncode == 2
    assert "not a platform name" in bad.stderr


def test_the_cli_refuses_incomplete_kafka_credentials_in_one_line(kafka_bootstrap: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fixloop_cli", "dlq", "list", "--bootstrap", kafka_bootstrap],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "FIXLOOP_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "invalid settings: FIXLOOP_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs "
        "FIXLOOP_KAFKA_SASL_USERNAME and FIXLOOP_KAFKA_SASL_PASSWORD"
    )


async def test_dead_letters_are_listed_and_replayed_to_their_original_topic(
    kafka_bootstrap: str,
) -> None:
    original = unique("fixloop.test.original")
    key = unique("dlq-key").encode()
    headers = {
        "ce_type": "fixloop.assignment.accepted.v1",
        "fixloop_dlq_reason": "handler-error",
        "fixloop_dlq_exception": "builtins.KeyError",
        "fixloop_dlq_message": "'contractor_id'",
        "fixloop_dlq_original_topic": original,
        "fixloop_dlq_original_partition": "0",
        "fixloop_dlq_original_offset": "41",
        "fixloop_dlq_service": "sla",
    }
    await produce(kafka_bootstrap, dead_letter_topic("sla"), b'{"x": 1}', key=key, headers=headers)

    listed = fixloop(kafka_bootstrap, "dlq", "list", "--service", "sla", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    mine = [row for row in rows if row["original"].startswith(original)]
    assert len(mine) == 1
    assert mine[0]["reason"] == "handler-error"
    assert mine[0]["exception"] == "builtins.KeyError"

    unknown = fixloop(kafka_bootstrap, "dlq", "replay", "--service", "sla", "--id", "sla/0/999999")
    assert unknown.returncode == 2
    assert "no dead letter with id sla/0/999999" in unknown.stderr

    replay = fixloop(kafka_bootstrap, "dlq", "replay", "--service", "sla", "--id", mine[0]["id"])
    assert replay.returncode == 0, replay.stderr
    replayed = await read_topic(kafka_bootstrap, original, until=lambda rs: len(rs) >= 1)
    assert [r.key for r in replayed] == [key]
    assert replayed[0].value == b'{"x": 1}'
    assert replayed[0].headers["ce_type"] == "fixloop.assignment.accepted.v1"
    assert replayed[0].headers["fixloop_replayed_from"] == mine[0]["id"]
    assert not any(h.startswith("fixloop_dlq_") for h in replayed[0].headers)


def test_bad_arguments_get_one_line_and_a_usage_exit_code(kafka_bootstrap: str) -> None:
    for args in (("dlq", "list", "--limit", "many"), ("dlq", "list", "--service", "billing")):
        result = fixloop(kafka_bootstrap, *args)
        assert result.returncode == 2
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.stderr.startswith("error: ")


# --------------------------------------------------------------------------- fixloop keys


def keys(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fixloop_cli", "keys", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_keys_new_prints_a_key_once_and_the_principal_entry_with_its_hash() -> None:
    result = keys("new", "--principal", "acme-erp", "--kind", "partner", "--tenant", "acme")
    assert result.returncode == 0, result.stderr
    [key] = [word for word in result.stdout.split() if word.startswith(API_KEY_PREFIX)]
    assert result.stdout.count(key) == 1
    entry_line = result.stdout.strip().splitlines()[-1]
    spec = PrincipalSpec.model_validate_json(entry_line)
    assert spec.entry() == {
        "id": "acme-erp",
        "kind": "partner",
        "tenant": "acme",
        "key_hashes": [hash_api_key(key)],
    }
    assert PrincipalDirectory.of([spec]).authenticate(key) == spec.principal()


def test_keys_new_json_for_a_contractor_app() -> None:
    result = keys(
        "new",
        "--principal",
        "klima-app",
        "--kind",
        "contractor",
        "--contractor",
        "ctr-berliner-klima",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    made = json.loads(result.stdout)
    assert made["key_hash"] == hash_api_key(made["key"])
    assert made["entry"] == {
        "id": "klima-app",
        "kind": "contractor",
        "contractor_id": "ctr-berliner-klima",
        "key_hashes": [made["key_hash"]],
    }
    # without a principal: just a key and its hash (e.g. to rotate an existing principal's key)
    bare = json.loads(keys("new", "--json").stdout)
    assert set(bare) == {"key", "key_hash"}
    assert bare["key"] != made["key"]


def test_keys_hash_from_an_argument_or_standard_input() -> None:
    expected = hash_api_key("dev-key-acme") + "\n"
    assert keys("hash", "dev-key-acme").stdout == expected
    assert keys("hash", stdin="dev-key-acme\n").stdout == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("new", "--principal", "acme-erp", "--kind", "partner"),
            "principal 'acme-erp': a partner principal needs a tenant",
        ),
        (
            ("new", "--principal", "klima-app", "--kind", "contractor", "--tenant", "acme"),
            "principal 'klima-app': a contractor principal needs a contractor_id",
        ),
        (("new", "--principal", "Acme ERP", "--tenant", "acme"), "a principal: id: must be"),
        (("new", "--kind", "admin"), "Invalid value for '--kind'"),
        (("new", "--tenant", "acme"), "--tenant and --contractor describe a principal"),
        (("hash", "two words"), "an API key is letters, digits"),
    ],
)
def test_keys_bad_arguments_are_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    result = keys(*args, stdin="")
    assert result.returncode == 2
    assert result.stdout == ""  # no key is printed for a refused request
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ")
    assert message in line
