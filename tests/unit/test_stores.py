"""The stores file: ids, scales, per-store profiles and time zones, and each store's stream key."""

from __future__ import annotations

import hashlib
import json
import tempfile
import zoneinfo
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foot_traffic.config.files import load_stores_file
from foot_traffic.model.grid import WEEKDAYS, SlotGrid
from foot_traffic.model.stores import Store, StoresFileError, stores_from_mapping
from foot_traffic.model.weights import DEFAULT_WEIGHTS, WeightsFileError, WeightTable

CITY_TOML = "[weights]\n" + "\n".join(f"{day} = [16, 17, 20, 17, 13, 10]" for day in WEEKDAYS)
CITY = WeightTable(DEFAULT_WEIGHTS.grid, ((16.0, 17.0, 20.0, 17.0, 13.0, 10.0),) * 7)
MALL_JSON = json.dumps({"slots": ["00:00", "12:00"], "weights": {day: [1, 3] for day in WEEKDAYS}})
MALL = WeightTable(SlotGrid((0, 720)), ((1.0, 3.0),) * 7)

SPEC_TOML = """
[[store]]
id = "milan-01"
scale = 1.0
weights = "profiles/city.toml"   # optional
timezone = "Europe/Rome"          # optional
[[store]]
id = "rome-02"
scale = 0.6
"""

SPEC_JSON = json.dumps(
    {
        "store": [
            {"id": "milan-01", "scale": 1.0, "weights": "profiles/city.toml", "timezone": "Europe/Rome"},
            {"id": "rome-02", "scale": 0.6},
        ]
    }
)

SPEC_STORES = (Store("milan-01", 1.0, CITY, "Europe/Rome"), Store("rome-02", 0.6))

ID_EXPECTED = "expected 1 to 64 characters, each a letter, a digit, '.', '_' or '-'"
TZ_EXPECTED = "expected an IANA time zone name such as Europe/Rome"
LIST_EXPECTED = "expected a list of at least one store table ([[store]] in TOML)"
KEYS_EXPECTED = "unknown key; expected only 'id', 'scale', 'weights', 'timezone', 'outages'"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Return a folder holding two weights profiles, as a stores file would refer to them."""
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "city.toml").write_text(CITY_TOML, encoding="utf-8")
    (tmp_path / "mall.json").write_text(MALL_JSON, encoding="utf-8")
    (tmp_path / "profiles" / "broken.toml").write_text("[weights]\nMonday = [1]", encoding="utf-8")
    return tmp_path


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("name", "text"), [("stores.toml", SPEC_TOML), ("stores.json", SPEC_JSON)])
def test_the_documented_example_loads(folder: Path, name: str, text: str) -> None:
    """The module docstring's example loads to the same stores from TOML and from JSON."""
    assert load_stores_file(_write(folder, name, text)) == SPEC_STORES


@pytest.mark.parametrize(
    ("text", "stores"),
    [
        # only the id is required
        ('[[store]]\nid = "a"', (Store("a"),)),
        # every allowed id character, at the longest allowed length
        ('[[store]]\nid = "' + "aZ09._-" * 9 + 'a"', (Store("aZ09._-" * 9 + "a"),)),
        # integer scales and a scale of 0
        ('[[store]]\nid = "a"\nscale = 2\n[[store]]\nid = "b"\nscale = 0', (Store("a", 2.0), Store("b", 0.0))),
        # ids are case-sensitive, so these two are different stores
        ('[[store]]\nid = "A"\n[[store]]\nid = "a"', (Store("A"), Store("a"))),
        # profiles from TOML and JSON; the same profile can serve several stores
        (
            '[[store]]\nid = "a"\nweights = "mall.json"\n[[store]]\nid = "b"\nweights = "profiles/city.toml"\n'
            '[[store]]\nid = "c"\nweights = "profiles/../profiles/city.toml"',
            (Store("a", weights=MALL), Store("b", weights=CITY), Store("c", weights=CITY)),
        ),
        # time zones
        ('[[store]]\nid = "a"\ntimezone = "UTC"', (Store("a", timezone="UTC"),)),
        (
            '[[store]]\nid = "a"\ntimezone = "America/Argentina/Buenos_Aires"',
            (Store("a", timezone="America/Argentina/Buenos_Aires"),),
        ),
        # the file's order is kept
        ('[[store]]\nid = "z"\n[[store]]\nid = "m"\n[[store]]\nid = "a"', (Store("z"), Store("m"), Store("a"))),
    ],
)
def test_valid_stores_load(folder: Path, text: str, stores: tuple[Store, ...]) -> None:
    """Each valid store table loads to the expected store, defaults filled in."""
    assert load_stores_file(_write(folder, "stores.toml", text)) == stores


def test_an_absolute_weights_path_is_used_as_it_is(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """An absolute weights path does not depend on the stores file's folder."""
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    text = json.dumps({"store": [{"id": "a", "weights": str(folder / "mall.json")}]})
    assert load_stores_file(_write(elsewhere, "stores.json", text)) == (Store("a", weights=MALL),)


@pytest.mark.parametrize(
    ("store_id", "expected"),
    [
        ("milan-01", 0x267550E1DBBC2B92),  # sha256 starts 26 75 50 e1 db bc 2b 92: the top bit is already clear
        ("a", 0x4A978112CA1BBDCA),  # sha256 starts ca 97 81 12 ca 1b bd ca: the mask clears the top bit
        ("rome-02", 0x7CF252172A0EDBDD),  # sha256 starts fc f2 52 17 2a 0e db dd
    ],
)
def test_the_stream_key_is_the_masked_sha256_prefix_of_the_id(store_id: str, expected: int) -> None:
    """The stream key is the first 8 bytes of sha256(id), big endian, masked to 63 bits, and never changes."""
    assert Store(store_id).stream_key == expected
    digest = hashlib.sha256(store_id.encode()).digest()
    assert expected == int.from_bytes(digest[:8], "big") & (2**63 - 1)


def test_the_stream_key_depends_only_on_the_id() -> None:
    """Scale, profile, time zone and position in the file do not change a store's stream key."""
    assert Store("a").stream_key == Store("a", 0.5, CITY, "Europe/Rome").stream_key
    assert Store("a").stream_key != Store("b").stream_key


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"id": ""}, "store id"),
        ({"id": "a b"}, "store id"),
        ({"id": "a" * 65}, "store id"),
        ({"id": "a\n"}, "store id"),
        ({"id": "a", "scale": -1.0}, "scale"),
        ({"id": "a", "scale": float("inf")}, "scale"),
        ({"id": "a", "timezone": "Mars/Base"}, "time zone"),
    ],
)
def test_invalid_stores_are_rejected_on_construction(kwargs: dict[str, object], message: str) -> None:
    """A Store refuses values the file format could never produce."""
    with pytest.raises(ValueError, match=message):
        Store(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # the top level
        ("", f"store is missing; {LIST_EXPECTED}"),
        ('[[stores]]\nid = "a"', "stores=[{'id': 'a'}]: unknown key; expected only 'store', a list of store tables"),
        ('store = "a"', f"store='a': {LIST_EXPECTED}"),
        ("store = []", f"store=[]: {LIST_EXPECTED}"),
        ('[store]\nid = "a"', f"store={{'id': 'a'}}: {LIST_EXPECTED}"),
        (
            'store = ["a"]',
            "line 1: store[0]='a': expected a table with 'id' and optionally 'scale', 'weights', 'timezone'",
        ),
        # keys of a store
        ('[[store]]\nid = "a"\ncolour = "red"', f"line 1: store[0].colour='red': {KEYS_EXPECTED}"),
        ('[[store]]\nid = "a"\nTimezone = "UTC"', f"line 1: store[0].Timezone='UTC': {KEYS_EXPECTED}"),
        ("[[store]]\nscale = 1", f"line 1: store[0].id is missing; {ID_EXPECTED}"),
        # ids
        ('[[store]]\nid = ""', f"line 1: store[0].id='': {ID_EXPECTED}"),
        ('[[store]]\nid = "milan 01"', f"line 1: store[0].id='milan 01': {ID_EXPECTED}"),
        ('[[store]]\nid = "milan/01"', f"line 1: store[0].id='milan/01': {ID_EXPECTED}"),
        ('[[store]]\nid = "città"', f"line 1: store[0].id='città': {ID_EXPECTED}"),
        ('[[store]]\nid = "a\\n"', f"line 1: store[0].id='a\\n': {ID_EXPECTED}"),
        ('[[store]]\nid = "' + "a" * 65 + '"', f"line 1: store[0].id='{'a' * 65}': {ID_EXPECTED}"),
        ("[[store]]\nid = 7", f"line 1: store[0].id=7: {ID_EXPECTED}"),
        (
            '[[store]]\nid = "a"\n[[store]]\nid = "b"\n[[store]]\nid = "a"',
            "line 5: store[2].id='a': expected a unique id; store[0] on line 1 has it already",
        ),
        # scales
        ('[[store]]\nid = "a"\nscale = -0.5', "line 1: store[0].scale=-0.5: expected a finite number >= 0"),
        ('[[store]]\nid = "a"\nscale = nan', "line 1: store[0].scale=nan: expected a finite number >= 0"),
        ('[[store]]\nid = "a"\nscale = -inf', "line 1: store[0].scale=-inf: expected a finite number >= 0"),
        ('[[store]]\nid = "a"\nscale = true', "line 1: store[0].scale=True: expected a finite number >= 0"),
        ('[[store]]\nid = "a"\nscale = "1"', "line 1: store[0].scale='1': expected a finite number >= 0"),
        # weights
        ('[[store]]\nid = "a"\nweights = ""', "line 1: store[0].weights='': expected the path of a weights file"),
        ('[[store]]\nid = "a"\nweights = 3', "line 1: store[0].weights=3: expected the path of a weights file"),
        (
            '[[store]]\nid = "a"\n[[store]]\nid = "b"\nweights = "profiles/x.toml"',
            "line 3: store[1].weights='profiles/x.toml': cannot read it: No such file or directory",
        ),
        (
            '[[store]]\nid = "a"\nweights = "profiles/broken.toml"',
            "line 1: store[0].weights='profiles/broken.toml': weights must have exactly the keys "
            f"{list(WEEKDAYS)}; missing {list(WEEKDAYS[1:])}, unknown []",
        ),
        (
            '[[store]]\nid = "a"\nweights = "stores.toml"',
            "line 1: store[0].weights='stores.toml': unknown keys ['store']; expected only 'slots' and 'weights'",
        ),
        # time zones
        ('[[store]]\nid = "a"\ntimezone = "Mars/Base"', f"line 1: store[0].timezone='Mars/Base': {TZ_EXPECTED}"),
        ('[[store]]\nid = "a"\ntimezone = "europe/rome"', f"line 1: store[0].timezone='europe/rome': {TZ_EXPECTED}"),
        ('[[store]]\nid = "a"\ntimezone = "Europe"', f"line 1: store[0].timezone='Europe': {TZ_EXPECTED}"),
        ('[[store]]\nid = "a"\ntimezone = ""', f"line 1: store[0].timezone='': {TZ_EXPECTED}"),
        (
            '[[store]]\nid = "a"\ntimezone = "../etc/passwd"',
            f"line 1: store[0].timezone='../etc/passwd': {TZ_EXPECTED}",
        ),
        (
            '[[store]]\nid = "a"\ntimezone = "/etc/localtime"',
            f"line 1: store[0].timezone='/etc/localtime': {TZ_EXPECTED}",
        ),
        ('[[store]]\nid = "a"\ntimezone = "zone.tab"', f"line 1: store[0].timezone='zone.tab': {TZ_EXPECTED}"),
        ('[[store]]\nid = "a"\ntimezone = 1', f"line 1: store[0].timezone=1: {TZ_EXPECTED}"),
    ],
)
def test_malformed_toml_is_rejected_naming_key_value_and_expectation(folder: Path, text: str, message: str) -> None:
    """Each malformed entry is reported with its key path, its value and what is expected."""
    with pytest.raises(StoresFileError) as caught:
        load_stores_file(_write(folder, "stores.toml", text))
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]", "expected a table (TOML) or an object (JSON) at the top level"),
        ('{"store": null}', f"store=None: {LIST_EXPECTED}"),
        (
            '{"store": [null]}',
            "line 1: store[0]=None: expected a table with 'id' and optionally 'scale', 'weights', 'timezone'",
        ),
        ('{"store": [{"id": null}]}', f"line 1: store[0].id=None: {ID_EXPECTED}"),
        ('{"store": [{"id": "a", "scale": NaN}]}', "line 1: store[0].scale=nan: expected a finite number >= 0"),
        (
            '{"store": [{"id": "a", "scale": 1' + "0" * 400 + "}]}",
            "line 1: store[0].scale=1" + "0" * 400 + ": expected a finite number >= 0",
        ),
        ('{"store": [{"id": "a", "timezone": null}]}', f"line 1: store[0].timezone=None: {TZ_EXPECTED}"),
        (
            '{"store": [{"id": "a", "weights": null}]}',
            "line 1: store[0].weights=None: expected the path of a weights file",
        ),
        ('{"store": [{"id": "a", "id": "b"}]}', "cannot parse it: the key 'id' appears twice in one object"),
    ],
)
def test_malformed_json_is_rejected_naming_key_value_and_expectation(folder: Path, text: str, message: str) -> None:
    """JSON-only mistakes (null, NaN, huge numbers, repeated keys, a non-object) are reported precisely."""
    with pytest.raises(StoresFileError) as caught:
        load_stores_file(_write(folder, "stores.json", text))
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("stores.toml", b'[[store]\nid = "a"'),
        ("stores.toml", b'[[store]]\nid = "a"\nid = "b"'),
        ("stores.json", b'{"store": [{"id": "a"}]'),
        ("stores.toml", b"\xff\xfe"),
    ],
)
def test_unparsable_files_are_rejected(tmp_path: Path, name: str, content: bytes) -> None:
    """Syntax errors, repeated TOML keys and bad encodings are reported as parse errors."""
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(StoresFileError, match=r"^cannot parse it: "):
        load_stores_file(path)


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    """A file that cannot be read is reported with the system's reason."""
    with pytest.raises(StoresFileError) as caught:
        load_stores_file(tmp_path / "nowhere.toml")
    assert str(caught.value) == "cannot read it: No such file or directory"


_PROFILES = {"mall.json": (MALL_JSON, MALL), "profiles/city.toml": (CITY_TOML, CITY)}
_STORE_FIELDS = st.fixed_dictionaries(
    {"id": st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True)},
    optional={
        "scale": st.one_of(
            st.integers(0, 10**6), st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False)
        ),
        "weights": st.sampled_from(sorted(_PROFILES)),
        "timezone": st.sampled_from(sorted(zoneinfo.available_timezones())),
    },
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_STORE_FIELDS, min_size=1, max_size=8, unique_by=lambda fields: fields["id"]))
def test_any_valid_store_list_written_as_json_loads_back_equal(stores: list[dict[str, object]]) -> None:
    """Every valid list of stores, written as JSON, loads back to the same stores in the same order."""
    expected = tuple(
        Store(
            str(fields["id"]),
            float(fields.get("scale", 1.0)),  # type: ignore[arg-type]
            _PROFILES[str(fields["weights"])][1] if "weights" in fields else None,
            str(fields["timezone"]) if "timezone" in fields else None,
        )
        for fields in stores
    )
    with tempfile.TemporaryDirectory() as name:
        root = Path(name)
        (root / "profiles").mkdir()
        for path, (text, _) in _PROFILES.items():
            (root / path).write_text(text, encoding="utf-8")
        stores_path = root / "stores.json"
        stores_path.write_text(json.dumps({"store": stores}), encoding="utf-8")
        loaded = load_stores_file(stores_path)
    assert loaded == expected
    assert [s.stream_key for s in loaded] == [s.stream_key for s in expected]


def test_the_model_builds_stores_without_reading_a_file() -> None:
    """stores_from_mapping asks its caller for each weights profile, by the path the file writes; it reads nothing."""
    asked: list[str] = []

    def profile(path: str) -> WeightTable:
        asked.append(path)
        if path == "broken.toml":
            raise WeightsFileError("cannot read it: gone")
        return MALL

    data = {"store": [{"id": "a", "weights": "mall.toml"}, {"id": "b"}]}
    assert stores_from_mapping(data, profile) == (Store("a", weights=MALL), Store("b"))
    assert asked == ["mall.toml"]
    with pytest.raises(StoresFileError, match=r"^store\[0\]\.weights='broken.toml': cannot read it: gone$"):
        stores_from_mapping({"store": [{"id": "a", "weights": "broken.toml"}]}, profile)
