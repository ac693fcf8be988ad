"""Per-process cache of the current build, for serving.

A build's rows never change once it is current (a rebuild writes a new build and flips the
pointer), so its neighbours, bought-together rows and trending lists are cached for as long
as the build is current, per process, keyed by (database, build id, build start time): a new
build, or another database (tests), is a cache miss. The only query every request still
makes is the pointer itself (`repo.current_key`: one row), so serving switches to a new build
at the next request after the flip and still never sees a half-built table.

The catalogue facts the rules need (name, category, price, stock, repeat-purchase kind)
change without a rebuild: the whole catalogue's are read at once (one statement through the
driver) and read again when older than `FACTS_SECONDS`, so a product that runs out of stock
leaves the lists within about that time (read in the background while requests use the
expiring facts). A request then needs no statement for them: looking up a
list's ~40 candidates one request at a time cost a third of a for-you list's CPU on the
20,000-product demo shop (most had expired since). A catalogue that takes long to read is read
less often: at most every `FACTS_READS` times its last reading time.

Each cache is bounded (`MAX_ENTRIES` keys: cleared when full, hot items come back at once),
and only the two most recent builds' caches are kept.

When a process first sees a build it loads that build's `also_bought` rows (what also-bought
and for-you read) in a background thread, one query: otherwise, on a catalogue of tens of
thousands of products, requests keep meeting products not loaded yet for minutes (measured on
the 20,000-product demo: for-you p99 28-35 ms at 500 requests/s, against 3 ms warm).

Plain tuples: what is kept here is plain tuples of plain values and NumPy arrays, in dicts.
The garbage collector stops tracking a plain tuple once it holds nothing tracked; a named
tuple or a dataclass it tracks for good. With the facts and the neighbour rows of 20,000
products as named tuples, a server worker's full collection walked ~60,000 objects and took
24-37 ms (measured with `gc.callbacks` on the 1M-customer demo under load): a pause for every
request in flight, after each catalogue refresh and, at full load, every 1-3 s. Nested tuples
lose their tracking one level per pass: see `warm_and_freeze`.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from patronage.config import get_settings
from patronage.recommend import repository as repo
from patronage.recommend.repository import FactValues, ProductFacts

log = logging.getLogger("patronage.recommend.cache")

FACTS_SECONDS = 10.0
FACTS_READS = 20  # a catalogue is kept at least this many times as long as reading it took
FACTS_CHUNK = 500  # products read between two turns of the other threads
WARM_KIND = "also_bought"  # the rows behind also-bought and for-you
MAX_ENTRIES = 50_000
KEEP_BUILDS = 2

Key = tuple[URL, int, object]  # the database (URL compares by value), the build id and start
Row = tuple[int, float, str]  # neighbour, score, model


# One product's row of a similar-items table, best first: as tuples, and as arrays of the
# neighbours and their scores (personal lists sum many rows at once with NumPy). Kept as a
# plain tuple: see "Plain tuples" in the module's docstring.
Neighbours = tuple[tuple[Row, ...], NDArray[np.int64], NDArray[np.float64]]


def neighbours_of(rows: list[Row]) -> Neighbours:
    return (
        tuple(rows),
        np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
        np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows)),
    )


NO_NEIGHBOURS = neighbours_of([])


@dataclass
class BuildCache:
    build_id: int
    neighbours: dict[tuple[str, int], Neighbours] = field(default_factory=dict)
    together: dict[int, tuple[tuple[int, float], ...]] = field(default_factory=dict)
    trending: dict[int, tuple[tuple[int, float], ...]] = field(default_factory=dict)
    catalogue: Catalogue | None = None
    refreshing: bool = False  # a background thread is reading the catalogue again
    reading: threading.Lock = field(default_factory=threading.Lock)  # a request is reading it


@dataclass(frozen=True)
class Catalogue:
    """Every product's facts by id, and until when (monotonic clock) they may be used."""

    facts: dict[int, FactValues]
    expires: float


def read_catalogue(session: Session) -> Catalogue:
    """The whole catalogue's facts, read in chunks with a pause between them for the other
    threads. Python hands the interpreter from a busy thread to a waiting one only every
    5 ms (`sys.getswitchinterval`): read in one go, the read kept a server's request threads
    and event loop waiting that long at each turn (measured in process on the 1M-customer
    demo: a thread due every 2 ms was late by 5.2 ms at p99 while reads ran, 1.1 ms with
    chunks of 500 and a `time.sleep(0)` after each)."""
    started = time.perf_counter()
    facts: dict[int, FactValues] = {}
    for part in repo.catalogue(session, FACTS_CHUNK):
        facts.update(part)
        time.sleep(0)  # releases the interpreter: a waiting thread takes it now
    took = time.perf_counter() - started
    return Catalogue(facts, _now() + max(FACTS_SECONDS, FACTS_READS * took))


def _fresh_catalogue(session: Session, cache: BuildCache) -> Catalogue:
    """The facts a request uses: read at once the first time (by one request: those arriving
    meanwhile wait for its read rather than each reading too); once expired, read again in a
    background thread (one at a time) while requests go on with the expiring ones. Reading
    20,000 products takes 40-190 ms (measured on this 2-core machine, fast and slow nights):
    read on the request path it lands on one request and on those queued behind it. Under
    PATRONAGE_ENV=test it is read at once (tests' databases come and go under a thread)."""
    with _lock:
        if cache.catalogue is not None and get_settings().env != "test":
            if not cache.refreshing:
                cache.refreshing = True
                _in_background(refresh_catalogue, session, cache, "patronage-recommend-facts")
            return cache.catalogue
    with cache.reading:
        catalogue = cache.catalogue
        if catalogue is None or catalogue.expires < _now():
            catalogue = cache.catalogue = read_catalogue(session)
    return catalogue


def _in_background(
    work: Callable[[Engine, BuildCache], object], session: Session, cache: BuildCache, name: str
) -> None:
    """Run `work` on the session's engine and a build's cache in a daemon thread."""
    engine = session.get_bind().engine
    threading.Thread(target=work, args=(engine, cache), name=name, daemon=True).start()


def refresh_catalogue(engine: Engine, cache: BuildCache) -> None:
    """Read the catalogue's facts again into a build's cache (serving's background thread)."""
    try:
        with Session(engine) as session:
            cache.catalogue = read_catalogue(session)
    except Exception as exc:  # the database went away: requests keep the facts they have
        log.warning("catalogue facts not refreshed: %s", type(exc).__name__)
    finally:
        cache.refreshing = False


_lock = threading.Lock()
_caches: dict[Key, BuildCache] = {}


def _now() -> float:
    return time.monotonic()


def clear() -> None:
    with _lock:
        _caches.clear()


def _bounded(store: dict[object, object], adding: int) -> None:
    if len(store) + adding > MAX_ENTRIES:
        store.clear()


@dataclass
class View:
    """What serving reads: the current build through the cache (or no build at all)."""

    session: Session
    cache: BuildCache | None

    @property
    def build_id(self) -> int | None:
        return None if self.cache is None else self.cache.build_id

    def _neighbours(
        self, kind: str, product_ids: Sequence[int]
    ) -> dict[tuple[str, int], Neighbours]:
        """The cached rows of these products (filled from one query for the missing ones)."""
        assert self.cache is not None
        store = self.cache.neighbours
        missing = [p for p in dict.fromkeys(product_ids) if (kind, p) not in store]
        if missing:
            found: dict[int, list[Row]] = {p: [] for p in missing}
            for a, b, score, model in repo.neighbours(
                self.session, kind, missing, repo.MAX_RANK, build_id=self.cache.build_id
            ):
                found[a].append((b, score, model))
            _bounded(store, len(found))  # type: ignore[arg-type]
            store.update({(kind, p): neighbours_of(rows) for p, rows in found.items()})
        return store

    def neighbours(
        self, kind: str, product_ids: Sequence[int], per_item: int
    ) -> list[tuple[int, int, float, str]]:
        """(product, neighbour, score, model), best first per product, as repo.neighbours."""
        if self.cache is None or not product_ids:
            return []
        store = self._neighbours(kind, product_ids)
        out: list[tuple[int, int, float, str]] = []
        for p in sorted(set(product_ids)):
            rows = store.get((kind, p), NO_NEIGHBOURS)[0]
            out.extend((p, b, s, m) for b, s, m in rows[:per_item])
        return out

    def neighbour_arrays(
        self, kind: str, product_ids: Sequence[int], per_item: int
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64], str | None]:
        """The rows of `neighbours` as arrays (product, neighbour, score), in the same order,
        and the model of the first row (None without rows)."""
        empty = np.empty(0, dtype=np.int64)
        if self.cache is None or not product_ids:
            return empty, empty, np.empty(0), None
        store = self._neighbours(kind, product_ids)
        found = [(p, store.get((kind, p), NO_NEIGHBOURS)) for p in sorted(set(product_ids))]
        found = [(p, n) for p, n in found if n[0]]
        if not found:
            return empty, empty, np.empty(0), None
        sources = [np.full(min(per_item, ids.size), p) for p, (_, ids, _) in found]
        ids = np.concatenate([ids[:per_item] for _, (_, ids, _) in found])
        scores = np.concatenate([scores[:per_item] for _, (_, _, scores) in found])
        first_rows = found[0][1][0]
        return np.concatenate(sources).astype(np.int64), ids, scores, first_rows[0][2]

    def together(self, product_ids: Sequence[int], per_item: int) -> list[tuple[int, int, float]]:
        if self.cache is None or not product_ids:
            return []
        store = self.cache.together
        missing = [p for p in dict.fromkeys(product_ids) if p not in store]
        if missing:
            found: dict[int, list[tuple[int, float]]] = {p: [] for p in missing}
            for a, b, c in repo.together(
                self.session, missing, repo.MAX_RANK, build_id=self.cache.build_id
            ):
                found[a].append((b, c))
            _bounded(store, len(found))  # type: ignore[arg-type]
            store.update({p: tuple(rows) for p, rows in found.items()})
        out: list[tuple[int, int, float]] = []
        for p in sorted(set(product_ids)):
            out.extend((p, b, c) for b, c in store.get(p, ())[:per_item])
        return out

    def trending(self, category_id: int, limit: int) -> list[tuple[int, float]]:
        if self.cache is None:
            return []
        store = self.cache.trending
        if category_id not in store:
            rows = repo.trending(
                self.session, category_id, repo.MAX_RANK, build_id=self.cache.build_id
            )
            _bounded(store, 1)  # type: ignore[arg-type]
            store[category_id] = tuple(rows)
        return list(store[category_id][:limit])

    def products(self, ids: Iterable[int]) -> dict[int, ProductFacts]:
        if self.cache is None:
            return repo.products(self.session, ids)
        catalogue = self.cache.catalogue
        if catalogue is None or catalogue.expires < _now():
            catalogue = _fresh_catalogue(self.session, self.cache)
        facts = catalogue.facts
        return {p: ProductFacts._make(f) for p in map(int, ids) if (f := facts.get(p)) is not None}

    def product_exists(self, product_id: int) -> bool:
        return bool(self.products([product_id]))


def current(session: Session) -> View:
    """The current build as a cached view: one small query (the build pointer)."""
    found = repo.current_key(session)
    if found is None:
        return View(session, None)
    key: Key = (session.get_bind().engine.url, *found)
    cache = _caches.get(key)
    if cache is None:
        with _lock:
            cache = _caches.get(key)
            if cache is None:
                cache = BuildCache(build_id=found[0])
                for old in list(_caches)[: max(0, len(_caches) - KEEP_BUILDS + 1)]:
                    del _caches[old]
                _caches[key] = cache
                if get_settings().env != "test":  # tests call warm() themselves: their
                    # databases come and go under a background thread
                    _in_background(warm_and_freeze, session, cache, "patronage-recommend-warm")
    return View(session, cache)


def warm_and_freeze(engine: Engine, cache: BuildCache) -> None:
    """A server's warm load, then its rows moved out of the garbage collector's walks.

    A product's rows are tuples in a tuple in a tuple: the collector untracks nested tuples
    one level per pass over their generation, and full passes are rare, so 20,000 products'
    rows stayed tracked for minutes and every full pass walked them (11.6 ms a pass in an
    idle process, 24-37 ms in a busy server; 1 ms once untracked). Frozen like what the
    application built at start (`app._lifespan`), they cost a full pass nothing; dropped
    with their build, they are freed as usual (reference counts free them, not the
    collector). What else is alive at that moment is frozen too: once per build, a few
    requests' worth at most."""
    warm(engine, cache)
    gc.freeze()


def warm(engine: Engine, cache: BuildCache, kind: str = WARM_KIND) -> int:
    """Load a build's rows of one kind into its cache (products already there are kept);
    returns the products loaded. Serving goes on meanwhile, loading what it misses itself."""
    try:
        with Session(engine) as session:
            rows = repo.neighbour_table(session, kind, cache.build_id)
    except Exception as exc:  # the database went away (a test's, a restart): serve on demand
        log.debug("recommendation cache not warmed: %s", type(exc).__name__)
        return 0
    if not rows:
        return 0
    products = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    starts = np.flatnonzero(np.r_[True, products[1:] != products[:-1]])
    if len(starts) > MAX_ENTRIES // 2:  # would crowd out everything else: serve on demand
        return 0
    ends = np.r_[starts[1:], len(rows)]
    store = cache.neighbours
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        key = (kind, int(products[start]))
        if key not in store:  # a request may have loaded it meanwhile (the same rows)
            store[key] = neighbours_of(
                [(int(b), float(c), str(d)) for _, b, c, d in rows[start:end]]
            )
    return len(starts)
