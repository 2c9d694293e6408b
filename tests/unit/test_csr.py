"""The numpy CSR matrix the compiled scorer builds its features in: the same matrices and the same products,
bit for bit, as scipy's."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from pipeline import csr
from pipeline.csr import Csr, hstack


def random_csr(rng: np.random.Generator, lengths: list[int], width: int, dtype=np.float32) -> sp.csr_matrix:
    """A scipy CSR matrix with the given number of entries per row (sorted columns, values in (0, 10))."""
    lengths = [min(n, width) for n in lengths]
    indptr = np.r_[0, np.cumsum(lengths)].astype(np.int32)
    cols = [np.sort(rng.choice(width, n, replace=False)) for n in lengths]
    indices = np.concatenate(cols).astype(np.int32) if cols else np.zeros(0, np.int32)
    data = (rng.random(int(indptr[-1])) * 10).astype(dtype)
    return sp.csr_matrix((data, indices, indptr), shape=(len(lengths), width))


LENGTHS = [0, 1, 2, 7, 40, 300, 1, 0, 1500, 3, 0]


@pytest.mark.parametrize(
    "dtypes", [(np.float32, np.float32), (np.float32, np.float64), (np.float64, np.float64)]
)
def test_the_product_is_scipys_bit_for_bit(dtypes) -> None:
    rng = np.random.default_rng(0)
    m = random_csr(rng, LENGTHS, 5000, dtypes[0])
    w = (rng.standard_normal((5000, 17)) * 3).astype(dtypes[1])
    want, got = m @ w, Csr.of(m) @ w
    assert got.dtype == want.dtype
    assert np.array_equal(got, want)


@pytest.mark.parametrize("slab_bytes", [1, 17 * 4 * 100, 1 << 18])
def test_the_product_in_slabs_of_any_size_is_scipys(monkeypatch: pytest.MonkeyPatch, slab_bytes: int) -> None:
    """One entry per slab, slabs shorter than a step (the 11 rows' first entries), and the default."""
    monkeypatch.setattr(csr, "PRODUCT_SLAB_BYTES", slab_bytes)
    rng = np.random.default_rng(2)
    m = random_csr(rng, LENGTHS, 5000, np.float32)
    w = (rng.standard_normal((5000, 17)) * 3).astype(np.float32)
    assert np.array_equal(Csr.of(m) @ w, m @ w)


def test_a_product_summed_in_another_order_is_caught() -> None:
    """The float32 sums of long rows depend on their order: adding each row's products first to last (a
    sequential float32 cumsum) gives the product exactly, last to first changes some bits."""
    rng = np.random.default_rng(1)
    m = random_csr(rng, [1500] * 20, 5000)
    w = rng.standard_normal((5000, 8)).astype(np.float32)
    want = Csr.of(m) @ w
    rows = [
        m.data[lo:hi, None] * w[m.indices[lo:hi]] for lo, hi in zip(m.indptr[:-1], m.indptr[1:], strict=True)
    ]
    forwards = np.vstack([np.cumsum(p, axis=0, dtype=np.float32)[-1] for p in rows])
    backwards = np.vstack([np.cumsum(p[::-1], axis=0, dtype=np.float32)[-1] for p in rows])
    assert np.array_equal(forwards, want)
    assert not np.array_equal(backwards, want)


def test_empty_matrices_and_rows() -> None:
    w = np.ones((10, 3), dtype=np.float32)
    empty = Csr(np.zeros(0, np.float32), np.zeros(0, np.int32), np.zeros(4, np.int32), (3, 10))
    assert np.array_equal(empty @ w, np.zeros((3, 3), np.float32))
    none = Csr(np.zeros(0, np.float32), np.zeros(0, np.int32), np.zeros(1, np.int32), (0, 10))
    assert (none @ w).shape == (0, 3)
    with pytest.raises(ValueError, match="cannot multiply"):
        empty @ np.ones((9, 3))


def test_hstack_is_scipys() -> None:
    rng = np.random.default_rng(2)
    a, b, c = (random_csr(rng, LENGTHS, width) for width in (5000, 30, 7))
    want = sp.hstack([a, b.astype(np.float64), c], format="csr", dtype=np.float32)
    got = hstack([Csr.of(a), b.astype(np.float64), Csr.of(c)], dtype=np.float32)
    assert got.shape == want.shape and got.dtype == np.float32
    assert np.array_equal(got.indptr, want.indptr)
    assert np.array_equal(got.indices, want.indices) and np.array_equal(got.data, want.data)
    assert hstack([a, b.astype(np.float64)]).dtype == np.float64  # promoted without a dtype
    with pytest.raises(ValueError, match="different numbers of rows"):
        hstack([a, random_csr(rng, [1, 2], 30)])


def test_rows_columns_dense_and_zeros() -> None:
    rng = np.random.default_rng(3)
    m = random_csr(rng, LENGTHS, 400)
    c = Csr.of(m).copy()
    dense = m.toarray()
    assert np.array_equal(c.toarray(), dense)
    assert np.array_equal(c.columns([399, 0, 17]), dense[:, [399, 0, 17]])
    assert np.array_equal(c.getrow(5).toarray(), dense[5:6])
    assert (Csr.from_dense(dense).to_scipy() != m).nnz == 0
    c.data[c.indptr[4] : c.indptr[5]] = 0  # row 4 emptied in place
    c.data[0] = 0
    c.eliminate_zeros()
    dense[4] = 0
    dense[np.nonzero(dense)[0][0], np.nonzero(dense)[1][0]] = 0
    assert c.nnz == m.nnz - 41 and np.array_equal(c.toarray(), dense)
    assert (c.to_scipy() != sp.csr_matrix(dense)).nnz == 0
    assert np.array_equal(c.scaled(0.5).data, c.data * 0.5) and c.astype(np.float64).dtype == np.float64
