"""Item-to-item tables on a matrix small enough to compute every score by hand.

Buyers (rows) of items A B C D (columns 0..3):
    u0: A B    u1: A B C    u2: A C    u3: B D    u4: A B D
Buyers per item: A 4, B 4, C 2, D 2. Co-buyers: AB 3, AC 2, AD 1, BC 1, BD 2, CD 0.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from patronage.errors import Conflict, NotFound, ValidationFailed
from patronage.recommend.algorithms.item_to_item import (
    ItemToItem,
    _Expected,
    build_table,
    co_buyers,
)

A, B, C, D = range(4)
ROWS = [[A, B], [A, B, C], [A, C], [B, D], [A, B, D]]


def matrix(rows: list[list[int]] = ROWS, n_items: int = 4) -> sp.csr_matrix:
    r = [i for i, items in enumerate(rows) for _ in items]
    c = [x for items in rows for x in items]
    return sp.csr_matrix((np.ones(len(c), dtype=np.float32), (r, c)), shape=(len(rows), n_items))


def table_dict(table: sp.csr_matrix) -> dict[tuple[int, int], float]:
    coo = table.tocoo()
    return {(int(r), int(c)): float(v) for r, c, v in zip(coo.row, coo.col, coo.data, strict=True)}


def test_co_buyers_counts_only_co_bought_pairs() -> None:
    co = co_buyers(matrix())
    assert table_dict(co) == {
        (A, B): 3, (B, A): 3, (A, C): 2, (C, A): 2, (A, D): 1, (D, A): 1,
        (B, C): 1, (C, B): 1, (B, D): 2, (D, B): 2,
    }  # fmt: skip
    assert table_dict(co_buyers(matrix(), min_count=2)) == {
        (A, B): 3, (B, A): 3, (A, C): 2, (C, A): 2, (B, D): 2, (D, B): 2,
    }  # fmt: skip


@pytest.mark.parametrize("block_items", [1, 3, 2048])
@pytest.mark.parametrize("num_threads", [1, 2])
def test_co_buyers_equals_dense_product_whatever_the_blocks(
    block_items: int, num_threads: int
) -> None:
    X = sp.random(400, 50, density=0.1, random_state=7, format="csr", dtype=np.float32)
    X.data[:] = 1
    dense = (X.T @ X).toarray()
    np.fill_diagonal(dense, 0)
    got = co_buyers(X, block_items=block_items, num_threads=num_threads)
    assert np.array_equal(got.toarray(), dense)


def test_cosine_scores() -> None:
    got = table_dict(build_table(matrix(), similarity="cosine", k=10))
    assert got == pytest.approx({
        (A, B): 3 / 4, (A, C): 2 / math.sqrt(8), (A, D): 1 / math.sqrt(8),
        (B, A): 3 / 4, (B, C): 1 / math.sqrt(8), (B, D): 2 / math.sqrt(8),
        (C, A): 2 / math.sqrt(8), (C, B): 1 / math.sqrt(8),
        (D, A): 1 / math.sqrt(8), (D, B): 2 / math.sqrt(8),
    })  # fmt: skip


def test_conditional_scores_and_popularity_damping() -> None:
    got = table_dict(build_table(matrix(), similarity="conditional", k=10, min_co_buyers=2))
    assert got == pytest.approx(
        {(A, B): 0.75, (A, C): 0.5, (B, A): 0.75, (B, D): 0.5, (C, A): 1.0, (D, B): 1.0}
    )
    damped = table_dict(
        build_table(matrix(), similarity="conditional", k=10, min_co_buyers=2, alpha=0.5)
    )
    assert damped[(A, B)] == pytest.approx(3 / (4 * 2))
    assert damped[(A, C)] == pytest.approx(2 / (4 * math.sqrt(2)))


def test_smith_linden_scores_by_hand() -> None:
    # 12 purchases: P_A = P_B = 1/3, P_C = P_D = 1/6. Other purchases n_c: u0 1, u1 2,
    # u2 1, u3 1, u4 2. E_AB = over A's buyers (n = 1, 2, 1, 2) of 1 - (2/3)^n = 16/9.
    got = table_dict(build_table(matrix(), similarity="smith_linden", k=10, min_co_buyers=1))
    e_ab = 2 * (1 / 3) + 2 * (1 - (2 / 3) ** 2)
    e_ac = 2 * (1 / 6) + 2 * (1 - (5 / 6) ** 2)  # = 17/18
    e_ca = (1 - (2 / 3) ** 2) + 1 / 3  # C's buyers u1 (n 2), u2 (n 1): 8/9
    assert e_ab == pytest.approx(16 / 9) and e_ac == pytest.approx(17 / 18)
    assert got[(A, B)] == pytest.approx((3 - e_ab) / math.sqrt(e_ab))  # 11/12
    assert got[(A, B)] == pytest.approx(11 / 12)
    assert got[(A, C)] == pytest.approx(19 / math.sqrt(306))
    assert got[(B, D)] == pytest.approx(19 / math.sqrt(306))
    assert got[(C, A)] == pytest.approx((2 - e_ca) / math.sqrt(e_ca))
    assert got[(D, B)] == pytest.approx(10 / (3 * math.sqrt(8)))
    assert got[(A, D)] == pytest.approx((1 - 17 / 18) / math.sqrt(17 / 18))
    assert got[(D, A)] == pytest.approx((1 - 8 / 9) / math.sqrt(8 / 9))
    # the bestseller B no longer tops A's list: C is bought with A more than chance says
    assert got[(A, C)] > got[(A, B)]
    assert len(got) == 10


def test_expected_co_buyers_match_the_definition_on_random_data() -> None:
    X = sp.random(300, 40, density=0.15, random_state=1, format="csr")
    X.data[:] = 1
    buyers = np.bincount(X.indices, minlength=40).astype(float)
    share = buyers / X.nnz
    others = np.diff(X.indptr) - 1
    dense = X.toarray().astype(bool)
    brute = np.array(
        [[np.sum(1 - (1 - share[y]) ** others[dense[:, x]]) for y in range(40)] for x in range(40)]
    )
    rows, cols = np.nonzero(np.ones((40, 40), dtype=bool))
    got = _Expected(X, buyers).at(rows.astype(np.int64), cols.astype(np.int64))
    assert np.allclose(got, brute[rows, cols], rtol=1e-9, atol=1e-12)


def test_top_k_keeps_the_best_with_ties_to_the_lower_item() -> None:
    got = table_dict(build_table(matrix(), similarity="cosine", k=1))
    # B's best are A (0.75); D's best is B; C's best is A; A's best is B
    assert got == pytest.approx({(A, B): 0.75, (B, A): 0.75, (C, A): 2 / math.sqrt(8),
                                 (D, B): 2 / math.sqrt(8)})  # fmt: skip
    tie = matrix([[0, 1, 2]], n_items=3)  # every pair has cosine 1
    assert table_dict(build_table(tie, similarity="cosine", k=1, min_co_buyers=1)) == {
        (0, 1): 1.0, (1, 0): 1.0, (2, 0): 1.0,
    }  # fmt: skip


def test_similar_items_and_for_you() -> None:
    model = ItemToItem(similarity="conditional", alpha=0.0, n_neighbours=10).fit(matrix())
    ids, scores = model.similar_items(A, 5)
    assert ids.tolist() == [B, C]
    assert scores.tolist() == pytest.approx([0.75, 0.5])
    with pytest.raises(NotFound):
        model.similar_items(9)
    # history {A}: B 0.75, C 0.5, then the most popular not yet bought (D) with score 0
    ids, scores = model.recommend(matrix([[A]]), 3)
    assert ids.tolist() == [[B, C, D]]
    assert scores[0].tolist() == pytest.approx([0.75, 0.5, 0.0])
    # a repeat-purchase item may come back (here through the popularity top-up)
    repeat = np.array([True, False, False, False])
    ids, _ = model.recommend(matrix([[A]]), 3, repeatable=repeat)
    assert ids.tolist() == [[B, C, A]]
    # without the top-up, short lists are padded with -1
    bare = ItemToItem(similarity="conditional", alpha=0.0, fill_popular=False).fit(matrix())
    ids, scores = bare.recommend(matrix([[C]]), 3)
    assert ids.tolist() == [[A, -1, -1]]
    assert scores[0, 1] == -np.inf


def test_for_you_sums_similarities_and_explains() -> None:
    model = ItemToItem(similarity="conditional", alpha=0.0).fit(matrix())
    ids, scores = model.recommend(matrix([[A, D]]), 2)
    # B: A->B 0.75 + D->B 1.0; C: A->C 0.5
    assert ids.tolist() == [[B, C]]
    assert scores[0].tolist() == pytest.approx([1.75, 0.5])
    assert model.explain(np.array([A, D]), np.array([B, C, -1])).tolist() == [D, A, -1]


def test_bad_input() -> None:
    with pytest.raises(Conflict):
        ItemToItem().recommend(matrix(), 3)
    with pytest.raises(ValidationFailed):
        ItemToItem(similarity="jaccard").fit(matrix())  # type: ignore[arg-type]
    with pytest.raises(ValidationFailed):
        ItemToItem().fit(np.ones((2, 2)))
    with pytest.raises(ValidationFailed):
        ItemToItem().fit(sp.csr_matrix((0, 3)))
    model = ItemToItem().fit(matrix())
    with pytest.raises(ValidationFailed):
        model.recommend(sp.csr_matrix((1, 7)), 3)
    with pytest.raises(ValidationFailed):
        model.recommend(matrix(), 0)


def test_a_catalogue_of_one_item() -> None:
    one = matrix([[0], [0]], n_items=1)
    for similarity in ("cosine", "conditional", "smith_linden"):
        model = ItemToItem(similarity=similarity).fit(one)  # type: ignore[arg-type]
        assert model.neighbours_.nnz == 0
        ids, _ = model.recommend(one[:1], 5)
        assert ids.tolist() == [[-1, -1, -1, -1, -1]]
        ids, _ = model.recommend(sp.csr_matrix((1, 1)), 2)
        assert ids.tolist() == [[0, -1]]
