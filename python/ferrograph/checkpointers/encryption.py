"""Encryption at rest: `Encryption`, given to a saver as `encryption=`, makes it store channel
values and pending writes AES-256-GCM encrypted (in Rust, crates/crypt), each with the id of
its key. Checkpoint structure (ids, versions) and, by default, metadata stay in clear, so
listing, filters, stats and retention work unchanged. `Encryption(..., metadata=True)` encrypts
each checkpoint's metadata too (`seal_metadata`, `open_metadata`): filters then decrypt and
match in the process, a scan of the checkpoints listed (see the README).

Keys rotate: `Encryption(keys=[new, old])` reads values of either key and writes with `new`;
`saver.rekey()` (`ferrograph rekey URL`) re-encrypts what is stored with the newest key. A
value whose key is missing, or that does not authenticate, is an error naming its key id
(`EncryptionKeyError`, `DecryptionError`), never garbage.

`seal` and `open_value` are the one place a saver's stored bytes pass through on their way in
and out; a saver without encryption still refuses (rather than misreads) an encrypted value.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence, Union

from ferrograph import _core
from ferrograph.errors import EncryptionKeyError

__all__ = [
    "KEY_ENV",
    "KEY_ID_ENV",
    "METADATA_ENV",
    "OLD_KEYS_ENV",
    "Encryption",
    "RekeyResult",
    "encryption_of",
    "open_metadata",
    "open_value",
    "seal",
    "seal_metadata",
]

#: The environment variable `Encryption.from_env` reads the key from (base64 of 32 bytes).
KEY_ENV = "FERROGRAPH_AES_KEY"
#: Its key id (default "default").
KEY_ID_ENV = "FERROGRAPH_AES_KEY_ID"
#: Older keys still to read, while rotating: "id:base64,id:base64".
OLD_KEYS_ENV = "FERROGRAPH_AES_OLD_KEYS"
#: "1" (or "true"): metadata is encrypted too (`Encryption(metadata=True)`).
METADATA_ENV = "FERROGRAPH_AES_METADATA"

KEY_BYTES = 32

#: The first byte of every sealed value (no JSON text starts with it).
_SEALED_FIRST = b"\x00"


def _key_bytes(key: Union[bytes, bytearray, str], what: str) -> bytes:
    if isinstance(key, (bytes, bytearray)):
        raw = bytes(key)
    elif isinstance(key, str):
        try:
            raw = base64.b64decode(key.strip(), validate=True)
        except (binascii.Error, ValueError) as e:
            raise ValueError(f"{what} is not valid base64: {e}") from None
    else:
        raise TypeError(f"{what} must be bytes or a base64 str, got {type(key).__name__}")
    if len(raw) != KEY_BYTES:
        raise ValueError(f"{what} is {len(raw)} bytes; AES-256 needs exactly {KEY_BYTES} (base64 of 32 random bytes)")
    return raw


class Encryption:
    """AES-256-GCM keys for a saver's `encryption=`.

    `Encryption(key=..., key_id="2026-12")`: one key (32 bytes, or their base64) and the id
    stored with every value it encrypts. `Encryption(keys=[new, old])`: several, newest first,
    each an `Encryption` or a `(key_id, key)` pair; values are written with the first and read
    with whichever their id names. Keys are never shown in a repr.

    `metadata=True`: each checkpoint's metadata is stored encrypted too (under the same key).
    Off by default, because encrypted metadata cannot be queried by the database: `list(filter=)`,
    retention filters and `ferrograph threads --filter` then read and decrypt the metadata of
    every checkpoint in scope and match it in this process (a scan), and `ferrograph threads`
    shows no step or source for a thread whose latest metadata is encrypted. The run id stays
    in its own clear column, so `delete_for_runs` still runs in the database. Reading never
    needs the flag: encrypted metadata is recognised and decrypted by any saver given the key.
    """

    _pairs: list[tuple[str, bytes]]

    def __init__(
        self,
        key: Union[bytes, bytearray, str, None] = None,
        key_id: Optional[str] = None,
        *,
        keys: Optional[Sequence[Union["Encryption", tuple[str, Union[bytes, str]]]]] = None,
        metadata: bool = False,
    ) -> None:
        pairs: list[tuple[str, bytes]] = []
        if keys is not None:
            if key is not None or key_id is not None:
                raise TypeError("Encryption takes key= and key_id=, or keys=, not both")
            if isinstance(keys, (str, bytes)) or not keys:
                raise ValueError("keys must be a non-empty list of Encryption objects or (key_id, key) pairs, newest first")
            for entry in keys:
                if isinstance(entry, Encryption):
                    pairs.extend(entry._pairs)
                elif isinstance(entry, tuple) and len(entry) == 2:
                    pairs.append((_key_id(entry[0]), _key_bytes(entry[1], f"the key with id {entry[0]!r}")))
                else:
                    raise TypeError(f"keys takes Encryption objects or (key_id, key) pairs, got {type(entry).__name__}")
        else:
            if key is None:
                raise TypeError("Encryption needs key= (32 bytes or their base64) and key_id=, or keys=[...]")
            if key_id is None:
                raise TypeError("Encryption needs key_id=: the id stored with each value, so that keys can rotate")
            pairs.append((_key_id(key_id), _key_bytes(key, f"the key with id {key_id!r}")))
        self._pairs = pairs
        self._ring = _core.Keyring(pairs)
        #: Whether checkpoint metadata is stored encrypted too (`metadata=True`).
        self.encrypts_metadata = bool(metadata)

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "Encryption":
        """The key in FERROGRAPH_AES_KEY (base64 of 32 bytes) under the id in
        FERROGRAPH_AES_KEY_ID ("default" when unset), followed, while rotating, by the older keys
        in FERROGRAPH_AES_OLD_KEYS ("id:base64,id:base64"); metadata encrypted too when
        FERROGRAPH_AES_METADATA is "1" or "true"."""
        env = os.environ if environ is None else environ
        key = env.get(KEY_ENV)
        if not key:
            raise EncryptionKeyError(f"{KEY_ENV} is not set: it must hold the base64 of a 32-byte key")
        pairs: list[tuple[str, Union[bytes, str]]] = [(env.get(KEY_ID_ENV) or "default", key)]
        for item in (env.get(OLD_KEYS_ENV) or "").split(","):
            if not item.strip():
                continue
            old_id, sep, old_key = item.strip().partition(":")
            if not sep:
                raise ValueError(f"{OLD_KEYS_ENV} holds 'id:base64' pairs separated by commas, got {old_id!r}")
            pairs.append((old_id, old_key))
        return cls(keys=pairs, metadata=(env.get(METADATA_ENV) or "").strip().lower() in ("1", "true"))

    @property
    def key_ids(self) -> list[str]:
        """The key ids, the one that writes first."""
        return list(self._ring.key_ids)

    @property
    def key_id(self) -> str:
        """The id of the key new values are written with."""
        return self._ring.key_ids[0]

    def encrypt(self, data: bytes) -> bytes:
        """`data` encrypted with the newest key."""
        return self._ring.seal(data)

    def decrypt(self, data: bytes) -> bytes:
        """The plaintext of an encrypted value."""
        return self._ring.open(data)

    def is_current(self, data: Any) -> bool:
        """Whether a stored value is encrypted with the newest key already."""
        return self._ring.is_current(data)

    def __repr__(self) -> str:
        return f"Encryption(key_ids={self.key_ids!r}{', metadata=True' if self.encrypts_metadata else ''})"


@dataclass
class RekeyResult:
    """What a rekey did: the stored values (and pending writes) it examined, those it rewrote
    under the newest key (`key_id`; the others were under it already), and the transactions
    (batches) it committed."""

    key_id: str
    examined: int = 0
    reencrypted: int = 0
    batches: int = 0
    by_table: dict[str, int] = field(default_factory=dict)


def _key_id(key_id: Any) -> str:
    if not isinstance(key_id, str):
        raise TypeError(f"a key id must be a str, got {type(key_id).__name__}")
    return key_id


def check(encryption: Any) -> Optional[Encryption]:
    """A saver's `encryption=` argument, checked."""
    if encryption is not None and not isinstance(encryption, Encryption):
        raise TypeError(f"encryption must be a ferrograph.checkpointers.Encryption, got {type(encryption).__name__}")
    return encryption


def encryption_of(saver: Any) -> Encryption:
    """A saver's encryption, for re-encrypting what it stores; a clear error without one."""
    encryption = getattr(saver, "encryption", None)
    if encryption is None:
        raise EncryptionKeyError(
            f"{type(saver).__name__} has no encryption: open it with encryption=Encryption(...) (or "
            f"{KEY_ENV} set, for the CLI) to re-encrypt its values"
        )
    return encryption


def seal(encryption: Optional[Encryption], data: bytes) -> bytes:
    """The bytes a saver stores for an encoded value or pending write."""
    return data if encryption is None else encryption._ring.seal(data)


def open_value(encryption: Optional[Encryption], data: Any) -> Any:
    """The encoded value of stored bytes: decrypted when they are encrypted, else as stored."""
    if data is None or data[:1] != _SEALED_FIRST:
        return data
    if encryption is None:
        raise _no_encryption(_core.sealed_key_id(data), "a stored value")
    return encryption._ring.open(data)


def _no_encryption(key_id: Optional[str], what: str) -> EncryptionKeyError:
    return EncryptionKeyError(
        f"{what} is encrypted with key id {key_id!r}, and this saver has no encryption: "
        f"give it encryption=Encryption(...) with that key (from the shell: {KEY_ENV} and {KEY_ID_ENV})"
    )


def seal_metadata(encryption: Optional[Encryption], text: str, *, always: bool = False) -> str:
    """The JSON a SQL saver stores for a checkpoint's metadata (`text`, a JSON object): with an
    encryption that covers metadata (or `always`, for re-encrypting), a JSON string holding the
    sealed object in base64 (still JSON, so a JSONB column takes it; metadata is never a string
    otherwise); else `text`."""
    if encryption is None or not (encryption.encrypts_metadata or always):
        return text
    return '"' + base64.b64encode(encryption._ring.seal(text.encode())).decode() + '"'


def sealed_metadata(data: Any) -> Optional[bytes]:
    """The sealed bytes of a metadata column `seal_metadata` encrypted; None for plain metadata."""
    if isinstance(data, memoryview):
        data = bytes(data)
    if not data or data[:1] not in ('"', b'"'):
        return None
    return base64.b64decode(data.strip('"' if isinstance(data, str) else b'"'))


def open_metadata(encryption: Optional[Encryption], data: Any) -> Any:
    """A metadata column as stored, decrypted when `seal_metadata` sealed it (an
    EncryptionKeyError naming the key id without the key), else as stored."""
    sealed = sealed_metadata(data)
    if sealed is None:
        return data
    if encryption is None:
        raise _no_encryption(_core.sealed_key_id(sealed), "a checkpoint's metadata")
    return encryption._ring.open(sealed)

