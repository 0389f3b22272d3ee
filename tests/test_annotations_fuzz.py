"""Annotation parsers on random input: entries whose boxes are four finite numbers, or DatasetError.

Test sets come from the web in many hand-edited variants; a bad file must be reported as a dataset
problem (the CLI prints DatasetError cleanly), never surface as a TypeError / OverflowError
traceback from deep in the loader.
"""

from __future__ import annotations

import json
import math
from xml.sax.saxutils import escape

import numpy as np
import pytest
from conftest import make_av_root, write_wav
from hypothesis import given, settings
from hypothesis import strategies as st

from train.datasets import (
    DatasetError,
    Entry,
    duet_entries,
    ground_truth,
    parse_flickr_xml,
    vggss_entries,
)

IDS = ("s000", "s001", "s002")  # samples with frame, audio and two source tracks on disk


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """One small layout for every example (hypothesis reuses it; each example rewrites the json)."""
    root = make_av_root(tmp_path_factory.mktemp("fuzz") / "av", n=len(IDS))
    rng = np.random.default_rng(0)
    for sid in IDS:
        for k in range(3):
            write_wav(root / "sources" / f"{sid}_{k}.wav", rng.uniform(-0.3, 0.3, 8000), 8000)
    return root


def assert_usable(entries: list[Entry], kind: str) -> None:
    """Every box is four finite numbers and the ground-truth map builds from it."""
    assert isinstance(entries, list)
    for e in entries:
        assert e.klass is None or isinstance(e.klass, str)
        for boxes in [e.boxes] + [src["boxes"] for src in e.sources]:
            assert isinstance(boxes, list)
            for box in boxes:
                assert len(box) == 4
                assert all(isinstance(v, int | float) and math.isfinite(v) for v in box)
            ground_truth(Entry(e.id, None, None, boxes=boxes), kind, size=16)


# --- Flickr xml --------------------------------------------------------------------------------

XMLISH = st.text(alphabet=st.sampled_from(list("<>/=\"' ?!-&;#x0123456789.eE+bboxannotation")))
NUMERIC = st.one_of(
    st.integers().map(str),
    st.integers(min_value=10**300, max_value=10**400).map(str),
    st.floats().map(repr),  # nan, inf, -0.0, 1e+308 ...
    st.from_regex(r"[+-]?[0-9]{0,4}\.?[0-9]{0,3}([eE][+-]?[0-9]{1,4})?", fullmatch=True),
    st.sampled_from(["1e999", "-1e999", "Infinity", "NaN", "1_000", " 12 ", "0x10", ""]),
    st.text(max_size=6),
)


@st.composite
def flickr_trees(draw) -> str:
    """``<annotation><object><bbox>`` trees with random shapes and random numeric strings."""

    def element(tag: str, inner: str) -> str:
        return f"<{tag}>{inner}</{tag}>"

    def bbox() -> str:
        children = draw(st.lists(st.none() | NUMERIC, max_size=6))
        return element(
            "bbox",
            "".join(
                f"<c{i}/>" if text is None else element(f"c{i}", escape(text))
                for i, text in enumerate(children)
            ),
        )

    objects = draw(st.lists(st.sampled_from(["bbox", "name", "empty"]), max_size=4))
    inner = "".join(
        element("object", bbox() if kind == "bbox" else element(kind, "x")) for kind in objects
    )
    return element("annotation", inner)


def check_flickr(root, content: str | bytes) -> None:
    path = root / "fuzz.xml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "replace"))
    try:
        boxes = parse_flickr_xml(path)
    except DatasetError:
        return
    assert_usable([Entry("x", None, None, boxes=boxes)], "flickr")


@settings(max_examples=200, deadline=None)
@given(st.one_of(XMLISH, st.text(), st.binary()))
def test_flickr_xml_of_random_text(root, content):
    check_flickr(root, content)


@settings(max_examples=300, deadline=None)
@given(flickr_trees())
def test_flickr_xml_of_random_annotation_trees(root, content):
    check_flickr(root, content)


# --- VGG-SS / duet json ------------------------------------------------------------------------

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)
NUMBERS = st.one_of(
    st.integers(), st.integers(min_value=10**300, max_value=10**400), st.floats(), st.booleans()
)
BOXES = st.one_of(
    st.lists(st.lists(NUMBERS, min_size=4, max_size=4) | JSON_VALUES, max_size=3), JSON_VALUES
)
FILE = st.sampled_from(IDS) | JSON_SCALARS
CLASS = st.text(max_size=6) | JSON_SCALARS
VGGSS_ITEMS = st.fixed_dictionaries({}, optional={"file": FILE, "class": CLASS, "bbox": BOXES})
SOURCES = st.fixed_dictionaries({}, optional={"class": CLASS, "bbox": BOXES})
DUET_ITEMS = st.fixed_dictionaries(
    {},
    optional={"file": FILE, "sources": st.lists(SOURCES | JSON_VALUES, max_size=3) | JSON_VALUES},
)


def tables(items):
    """Mostly lists of (random) annotation objects, sometimes any JSON value at all."""
    return st.lists(items, max_size=5) | st.lists(items | JSON_VALUES, max_size=4) | JSON_VALUES


def check_json(root, load, table, kind: str) -> None:
    path = root / "fuzz.json"
    path.write_text(json.dumps(table))  # NaN / Infinity included, as Python's json accepts them
    try:
        entries = load(root, path)
    except DatasetError:
        return
    assert_usable(entries, kind)


@settings(max_examples=300, deadline=None)
@given(tables(VGGSS_ITEMS))
def test_vggss_json_of_random_values(root, table):
    check_json(root, vggss_entries, table, "vggss")


@settings(max_examples=300, deadline=None)
@given(tables(DUET_ITEMS))
def test_duet_json_of_random_values(root, table):
    check_json(root, duet_entries, table, "duet")


@settings(max_examples=100, deadline=None)
@given(st.text() | st.binary())
def test_annotations_json_of_random_text(root, content):
    path = root / "fuzz.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "replace"))
    for load in (vggss_entries, duet_entries):
        try:
            assert_usable(load(root, path), "vggss")
        except DatasetError:
            pass
