"""Principals of the gRPC edge: key hashing, configuration entries, and looking a key up."""

from __future__ import annotations

import hashlib
import json
import re
import string

import pytest
from pydantic import TypeAdapter, ValidationError

from fixloop_shared.grpc_edge import (
    API_KEY_PREFIX,
    Principal,
    PrincipalDirectory,
    PrincipalKind,
    PrincipalSpec,
    PrincipalSpecs,
    hash_api_key,
    new_api_key,
)
from fixloop_shared.grpc_edge.principals import MAX_PRESENTED_KEY_CHARS, is_key_hash
from fixloop_shared.grpc_edge.rate_limit import PrincipalRateLimit

PARTNER_KEY = "partner-key-4b1e"
NEXT_PARTNER_KEY = "partner-key-next-77c0"
OPERATOR_KEY = "operator-key-a9d2"
CONTRACTOR_KEY = "contractor-key-03ff"


def partner(**changes: object) -> dict[str, object]:
    return {
        "id": "acme-erp",
        "kind": "partner",
        "tenant": "acme",
        "key_hashes": [hash_api_key(PARTNER_KEY)],
        **changes,
    }


def contractor(**changes: object) -> dict[str, object]:
    return {
        "id": "klima-app",
        "kind": "contractor",
        "contractor_id": "ctr-berliner-klima",
        "key_hashes": [hash_api_key(CONTRACTOR_KEY)],
        **changes,
    }


def operator(**changes: object) -> dict[str, object]:
    return {
        "id": "acme-ops",
        "kind": "operator",
        "tenant": "acme",
        "key_hashes": [hash_api_key(OPERATOR_KEY)],
        **changes,
    }


def problem(data: object) -> str:
    """The one-line message a bad entry is refused with."""
    with pytest.raises(ValidationError) as refused:
        PrincipalSpec.model_validate(data)
    [error] = refused.value.errors()
    message = str(error["msg"]).removeprefix("Value error, ")
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------- hashing


def test_hash_is_sha256_of_the_utf8_key_with_its_scheme() -> None:
    assert hash_api_key("abc") == (
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    assert hash_api_key("schlüssel") == (
        "sha256:" + hashlib.sha256("schlüssel".encode()).hexdigest()
    )
    assert hash_api_key(PARTNER_KEY) == hash_api_key(PARTNER_KEY)
    assert hash_api_key(PARTNER_KEY) != hash_api_key(PARTNER_KEY + " ")
    assert is_key_hash(hash_api_key(PARTNER_KEY))


def test_an_empty_key_has_no_hash() -> None:
    with pytest.raises(ValueError, match="empty"):
        hash_api_key("")


def test_new_keys_are_random_prefixed_and_url_safe() -> None:
    keys = {new_api_key() for _ in range(200)}
    assert len(keys) == 200
    allowed = set(string.ascii_letters + string.digits + "-_")
    for key in keys:
        assert key.startswith(API_KEY_PREFIX)
        assert len(key) == len(API_KEY_PREFIX) + 43  # 32 bytes, base64url without padding
        assert set(key.removeprefix(API_KEY_PREFIX)) <= allowed
        assert is_key_hash(hash_api_key(key))


def test_the_hash_docstring_says_why_a_fast_hash_is_right() -> None:
    doc = hash_api_key.__doc__ or ""
    assert "entropy" in doc
    assert "fast" in doc


# --------------------------------------------------------------------------- entries


@pytest.mark.parametrize("entry", [partner(), operator(), contractor()])
def test_valid_entries_make_their_principal(entry: dict[str, object]) -> None:
    spec = PrincipalSpec.model_validate(entry)
    principal = spec.principal()
    assert principal.id == entry["id"]
    assert principal.kind == PrincipalKind(str(entry["kind"]))
    assert principal.tenant == entry.get("tenant")
    assert principal.contractor_id == entry.get("contractor_id")
    # the entry as printed for FIXLOOP_ORDERS_PRINCIPALS reads back the same
    assert PrincipalSpec.model_validate(spec.entry()) == spec
    assert spec.entry() == entry


def test_two_hashes_are_a_rotation() -> None:
    spec = PrincipalSpec.model_validate(
        partner(key_hashes=[hash_api_key(PARTNER_KEY), hash_api_key(NEXT_PARTNER_KEY)])
    )
    assert len(spec.key_hashes) == 2


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (partner(tenant=None), "principal 'acme-erp': a partner principal needs a tenant"),
        (operator(tenant=None), "principal 'acme-ops': an operator principal needs a tenant"),
        (
            partner(contractor_id="ctr-x"),
            "principal 'acme-erp': a partner principal has no contractor_id (only contractor "
            "principals do)",
        ),
        (
            operator(contractor_id="ctr-x"),
            "principal 'acme-ops': an operator principal has no contractor_id (only contractor "
            "principals do)",
        ),
        (
            contractor(contractor_id=None),
            "principal 'klima-app': a contractor principal needs a contractor_id",
        ),
        (
            contractor(tenant="acme"),
            "principal 'klima-app': a contractor principal has no tenant (it serves the tenants "
            "its contractor works for): leave tenant out",
        ),
    ],
)
def test_kind_and_binding_must_agree(entry: dict[str, object], message: str) -> None:
    assert problem(entry) == message


@pytest.mark.parametrize(
    "bad_hash",
    [
        "flk_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG",  # a plain key pasted by mistake
        hash_api_key(PARTNER_KEY).removeprefix("sha256:"),  # no scheme
        hash_api_key(PARTNER_KEY).upper(),
        hash_api_key(PARTNER_KEY).replace("sha256:", "sha512:"),
        hash_api_key(PARTNER_KEY)[:-1],  # 63 hex digits
        hash_api_key(PARTNER_KEY) + "0",
        "sha256:" + "g" * 64,
        "md5:" + hashlib.md5(b"x", usedforsecurity=False).hexdigest(),
        "",
    ],
)
def test_a_hash_must_be_sha256_hex_and_is_never_repeated(bad_hash: str) -> None:
    message = problem(partner(key_hashes=[hash_api_key(NEXT_PARTNER_KEY), bad_hash]))
    assert message == (
        "principal 'acme-erp': key_hashes[1] is not 'sha256:' followed by 64 lowercase hex "
        "digits; configure the hash of a key (`fixloop keys hash`), never the key itself"
    )
    if bad_hash:
        assert bad_hash not in message


@pytest.mark.parametrize("count", [0, 3])
def test_a_principal_has_one_or_two_hashes(count: int) -> None:
    hashes = [hash_api_key(f"key-{n}") for n in range(count)]
    assert problem(partner(key_hashes=hashes)) == (
        f"principal 'acme-erp': key_hashes: holds {count} hashes; a principal has 1, or 2 while "
        "its key is rotated"
    )


def test_the_same_hash_twice_is_no_rotation() -> None:
    same = hash_api_key(PARTNER_KEY)
    assert problem(partner(key_hashes=[same, same])) == (
        "principal 'acme-erp': key_hashes: lists the same hash twice"
    )


def test_other_problems_name_the_field_in_one_line() -> None:
    assert problem(partner(kind="admin")) == (
        "principal 'acme-erp': kind: Input should be 'partner', 'contractor' or 'operator'"
    )
    assert problem(partner(keys=["x"])) == (
        "principal 'acme-erp': keys: unknown field (allowed: id, kind, tenant, contractor_id, "
        "key_hashes, rate_limit)"
    )
    assert problem(partner(id="Acme ERP")).startswith("a principal: id: must be 1-63 lower-case")
    assert problem({"kind": "partner", "tenant": "acme"}) == (
        "a principal: id: Field required; key_hashes: Field required"
    )
    assert problem(partner(tenant="Acme Corp")).startswith("principal 'acme-erp': tenant: ")
    assert problem("acme-erp") == (
        "a principal: Input should be a valid dictionary or instance of PrincipalSpec"
    )


def test_a_principal_may_have_a_rate_limit_of_its_own() -> None:
    spec = PrincipalSpec.model_validate(partner(rate_limit=" 200/second;6000/minute "))
    assert spec.principal().rate_limit == "200/second;6000/minute"
    assert PrincipalSpec.model_validate(partner()).principal().rate_limit is None
    assert problem(partner(rate_limit="lots")).startswith(
        "principal 'acme-erp': rate_limit: couldn't parse rate limit string 'lots'"
    )


def test_a_principals_own_limit_replaces_the_default_and_counts_only_its_calls() -> None:
    limits = PrincipalRateLimit("2/minute")
    assert limits.retry_after("erp") is None
    assert limits.retry_after("erp") is None
    hit = limits.retry_after("erp")
    assert hit is not None
    assert str(hit[0]) == "2 per 1 minute"
    assert 0 < hit[1] <= 60
    for _ in range(5):  # its own, larger budget
        assert limits.retry_after("bulk-sync", "5/minute") is None
    assert limits.retry_after("bulk-sync", "5/minute") is not None
    unlimited = PrincipalRateLimit(None)
    assert all(unlimited.retry_after("erp") is None for _ in range(100))
    assert unlimited.retry_after("tiny", "1/hour") is None
    assert unlimited.retry_after("tiny", "1/hour") is not None


def test_a_principal_itself_checks_its_binding() -> None:
    assert str(Principal("acme-erp", PrincipalKind.PARTNER, tenant="acme")) == "partner:acme-erp"
    with pytest.raises(ValueError, match="needs a tenant"):
        Principal("acme-erp", PrincipalKind.PARTNER)
    with pytest.raises(ValueError, match="needs a contractor_id"):
        Principal("klima-app", PrincipalKind.CONTRACTOR, tenant="acme")
    with pytest.raises(ValueError, match="slug"):
        Principal("Acme", PrincipalKind.OPERATOR, tenant="acme")


# --------------------------------------------------------------------------- the directory


@pytest.fixture
def directory() -> PrincipalDirectory:
    return PrincipalDirectory.of(
        [
            PrincipalSpec.model_validate(
                partner(key_hashes=[hash_api_key(PARTNER_KEY), hash_api_key(NEXT_PARTNER_KEY)])
            ),
            operator(),  # a JSON object does as well
            contractor(),
        ]
    )


def test_a_key_finds_its_principal(directory: PrincipalDirectory) -> None:
    found = directory.authenticate(PARTNER_KEY)
    assert found == Principal("acme-erp", PrincipalKind.PARTNER, tenant="acme")
    assert directory.authenticate(OPERATOR_KEY) == Principal(
        "acme-ops", PrincipalKind.OPERATOR, tenant="acme"
    )
    assert directory.authenticate(CONTRACTOR_KEY) == Principal(
        "klima-app", PrincipalKind.CONTRACTOR, contractor_id="ctr-berliner-klima"
    )
    assert directory.authenticate(CONTRACTOR_KEY.encode()) == directory.authenticate(CONTRACTOR_KEY)


def test_both_keys_of_a_rotation_find_the_same_principal(directory: PrincipalDirectory) -> None:
    assert directory.authenticate(PARTNER_KEY) is directory.authenticate(NEXT_PARTNER_KEY)
    assert len(directory) == 3
    assert [p.id for p in directory] == ["acme-erp", "acme-ops", "klima-app"]


@pytest.mark.parametrize(
    "presented",
    [
        "",
        "unknown-key",
        PARTNER_KEY.upper(),
        f" {PARTNER_KEY}",
        hash_api_key(PARTNER_KEY),  # knowing the stored hash is not knowing the key
        hash_api_key(PARTNER_KEY).removeprefix("sha256:"),
        "x" * (MAX_PRESENTED_KEY_CHARS + 1),
        b"\xff\xfe",
    ],
)
def test_anything_else_finds_no_one(directory: PrincipalDirectory, presented: str | bytes) -> None:
    assert directory.authenticate(presented) is None


def test_the_directory_keeps_no_plaintext_key(directory: PrincipalDirectory) -> None:
    held = repr(directory) + repr(directory.principals) + repr(dict(directory._by_hash))
    for key in (PARTNER_KEY, NEXT_PARTNER_KEY, OPERATOR_KEY, CONTRACTOR_KEY):
        assert key not in held
    assert re.fullmatch(
        r"PrincipalDirectory\(<1 partner, 1 contractor, 1 operator>\)", repr(directory)
    )


def test_an_empty_directory_finds_no_one() -> None:
    empty = PrincipalDirectory.of([])
    assert len(empty) == 0
    assert not empty
    assert empty.authenticate(PARTNER_KEY) is None


def test_a_hash_shared_by_two_principals_is_refused() -> None:
    shared = hash_api_key(PARTNER_KEY)
    with pytest.raises(ValueError, match=r"^principals 'acme-erp' and 'acme-ops' have the same"):
        PrincipalDirectory.of([partner(), operator(key_hashes=[hash_api_key("other"), shared])])


def test_an_id_configured_twice_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^principal 'acme-erp' is configured twice"):
        PrincipalDirectory.of([partner(), partner(key_hashes=[hash_api_key("another")])])


def test_a_setting_list_is_checked_as_a_whole() -> None:
    specs = TypeAdapter(PrincipalSpecs)
    assert len(specs.validate_python([partner(), operator(), contractor()])) == 3
    with pytest.raises(ValidationError, match="have the same key hash"):
        specs.validate_python([partner(), contractor(key_hashes=[hash_api_key(PARTNER_KEY)])])
    with pytest.raises(ValidationError, match="configured twice"):
        specs.validate_json(
            json.dumps(
                [
                    operator(id="a", key_hashes=[hash_api_key("1")]),
                    operator(id="a", key_hashes=[hash_api_key("2")]),
                ]
            )
        )
