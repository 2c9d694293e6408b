"""A compressed-sparse-row matrix in numpy alone: what the compiled scorer builds its features in.

Importing ``scipy.sparse`` takes 0.15-0.3 s on this machine (it pulls in numpy's testing and f2py modules
through scipy's array-API layer), longer than loading a model. Scoring needs little of it: a matrix built
row by row, blocks side by side, a product with the dense weight matrix and a few row edits. ``Csr`` does
those with the same arithmetic as scipy, in the same order, so the scores are bit-identical
(``tests/unit/test_csr.py``, ``tests/model/test_scorer_real.py``); ``to_scipy`` hands a matrix to code that
wants scipy (training, scikit-learn).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

PRODUCT_SLAB_BYTES = 1 << 18
"""Size of the buffer ``Csr.__matmul__`` forms its products in (256 KB: it stays in the CPU's cache)."""


class Csr:
    """A CSR matrix: ``data``, ``indices`` (sorted within each row), ``indptr`` and ``shape``, as scipy's."""

    __slots__ = ("data", "indices", "indptr", "shape")

    def __init__(self, data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, shape: tuple[int, int]):
        self.data = data
        self.indices = indices
        self.indptr = indptr
        self.shape = (int(shape[0]), int(shape[1]))

    @classmethod
    def of(cls, m: Any) -> Csr:
        """A ``Csr`` sharing the arrays of ``m`` (a ``Csr`` or a scipy CSR matrix)."""
        if isinstance(m, Csr):
            return m
        m = m.tocsr()
        return cls(m.data, m.indices, m.indptr, m.shape)

    @classmethod
    def from_dense(cls, a: np.ndarray) -> Csr:
        """The nonzero entries of a 2-D array, row by row (what ``scipy.sparse.csr_matrix(a)`` keeps)."""
        a = np.asarray(a)
        rows, cols = np.nonzero(a)
        return cls(a[rows, cols], cols.astype(np.int32), indptr_of(rows, a.shape[0], np.int32), a.shape)

    @property
    def nnz(self) -> int:
        """The number of stored entries."""
        return int(self.indptr[-1])

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the values."""
        return self.data.dtype

    def copy(self) -> Csr:
        """A copy with arrays of its own."""
        return Csr(self.data.copy(), self.indices.copy(), self.indptr.copy(), self.shape)

    def tocsr(self, copy: bool = False) -> Csr:
        """Itself (or a copy): the same call as on a scipy matrix."""
        return self.copy() if copy else self

    def astype(self, dtype: Any) -> Csr:
        """The same entries with values of ``dtype``."""
        return Csr(self.data.astype(dtype), self.indices, self.indptr, self.shape)

    def scaled(self, factor: float) -> Csr:
        """Every value times ``factor`` (``m * factor`` in scipy: the values' dtype and numpy's promotion)."""
        return Csr(self.data * factor, self.indices, self.indptr, self.shape)

    def row_of_entries(self) -> np.ndarray:
        """The row of every stored entry."""
        return rows_of(self.indptr)

    def eliminate_zeros(self) -> None:
        """Drop stored zeros, in place."""
        keep = self.data != 0
        if keep.all():
            return
        rows = self.row_of_entries()[keep]
        self.data, self.indices = self.data[keep], self.indices[keep]
        self.indptr = indptr_of(rows, self.shape[0], self.indptr.dtype)

    def getrow(self, i: int) -> Csr:
        """Row ``i`` as a 1-row matrix (its arrays are views)."""
        lo, hi = int(self.indptr[i]), int(self.indptr[i + 1])
        return Csr(
            self.data[lo:hi],
            self.indices[lo:hi],
            np.array([0, hi - lo], self.indptr.dtype),
            (1, self.shape[1]),
        )

    def columns(self, cols: Iterable[int]) -> np.ndarray:
        """The dense (n_rows, len(cols)) block of the given columns, in the order given."""
        want = np.fromiter(cols, dtype=np.int64)
        out = np.zeros((self.shape[0], len(want)), dtype=self.data.dtype)
        if not len(want) or not self.nnz:
            return out
        sorter = np.argsort(want, kind="stable")
        sorted_cols = want[sorter]
        at = np.minimum(np.searchsorted(sorted_cols, self.indices), len(want) - 1)
        hit = sorted_cols[at] == self.indices
        out[self.row_of_entries()[hit], sorter[at[hit]]] = self.data[hit]
        return out

    def toarray(self) -> np.ndarray:
        """The dense matrix."""
        out = np.zeros(self.shape, dtype=self.data.dtype)
        out[self.row_of_entries(), self.indices] = self.data
        return out

    def to_scipy(self) -> Any:
        """The same matrix as a ``scipy.sparse.csr_matrix`` (sharing the arrays)."""
        import scipy.sparse as sp

        return sp.csr_matrix((self.data, self.indices, self.indptr), shape=self.shape)

    def __matmul__(self, other: np.ndarray) -> np.ndarray:
        """The dense product with a 2-D array, as scipy's ``csr_matvecs`` computes it.

        Each output row starts at zero and adds value x weight row for its entries in stored order, in the
        promoted dtype of the two operands, so every sum is formed in the same order as scipy's loop and
        the result is identical bit for bit. Vectorised across rows: the k-th entries of all rows longer
        than k are laid out side by side (longest rows first), and step k adds them to a prefix of the rows.
        The products are formed a slab of steps at a time (``PRODUCT_SLAB_BYTES``) in one reused buffer:
        gathering the weight rows of all entries at once allocated, and so page-faulted, tens of MB per
        chunk, which took longer than the arithmetic.
        """
        other = np.asarray(other)
        if other.ndim != 2 or other.shape[0] != self.shape[1]:
            raise ValueError(f"cannot multiply a {self.shape} matrix by one of shape {other.shape}")
        dtype = np.result_type(self.data.dtype, other.dtype)
        n, width = self.shape[0], other.shape[1]
        out = np.zeros((n, width), dtype=dtype)
        if not self.nnz:
            return out
        rank, active, offsets, source = k_major(self.indptr)
        values = self.data[source].astype(dtype, copy=False)
        columns = self.indices[source]
        weights = other.astype(dtype, copy=False)
        slab = max(1, PRODUCT_SLAB_BYTES // max(1, width * dtype.itemsize))  # entries per slab
        buffer = np.empty((min(slab, self.nnz), width), dtype=dtype)
        k, steps = 0, len(active)
        while k < steps:
            lo, end = offsets[k], k + 1
            while end < steps and offsets[end + 1] - lo <= slab:
                end += 1
            hi = offsets[end]
            if hi - lo > len(buffer):  # one step longer than a slab
                buffer = np.empty((hi - lo, width), dtype=dtype)
            products = buffer[: hi - lo]
            np.take(weights, columns[lo:hi], axis=0, out=products)
            products *= values[lo:hi, None]  # value x weight, as scipy multiplies (the product commutes)
            for j in range(k, end):
                out[: active[j]] += products[offsets[j] - lo : offsets[j + 1] - lo]
            k = end
        return out[rank]


def rows_of(indptr: np.ndarray) -> np.ndarray:
    """The row of every entry of a CSR matrix with row pointers ``indptr``."""
    return np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))


def indptr_of(rows: np.ndarray, n_rows: int, dtype: Any = np.int64) -> np.ndarray:
    """The row pointers of ``n_rows`` rows whose entries, in row order, are in ``rows``."""
    indptr = np.zeros(n_rows + 1, dtype=dtype)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return indptr


def k_major(indptr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The entries of a CSR matrix laid out by position within their row: (rank, active, offsets, source).

    Rows are ranked longest first (``rank[row]``); ``active[k]`` rows have more than k entries, and they are
    the first ``active[k]`` in rank order; ``source[offsets[k] + r]`` is the k-th entry of the row ranked
    r. A loop over k that adds slice k to the first ``active[k]`` rows adds each row's entries in stored
    order, as scipy's and scikit-learn's row loops do, with one numpy operation per step.
    """
    indptr = np.asarray(indptr, dtype=np.int64)
    lengths = np.diff(indptr)
    n, nnz = len(lengths), int(indptr[-1])
    order = np.argsort(-lengths, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n, dtype=np.int64)
    active = np.bincount(lengths)[::-1].cumsum()[::-1][1:] if n else np.zeros(0, np.int64)
    offsets = np.zeros(len(active) + 1, dtype=np.int64)
    np.cumsum(active, out=offsets[1:])
    rows = rows_of(indptr)
    position = np.arange(nnz, dtype=np.int64) - indptr[:-1][rows]
    source = np.empty(nnz, dtype=np.int64)
    source[offsets[position] + rank[rows]] = np.arange(nnz, dtype=np.int64)
    return rank, active, offsets, source


def hstack(mats: Sequence[Any], dtype: Any = None) -> Csr:
    """The matrices side by side (each a ``Csr`` or a scipy CSR matrix with the same number of rows)."""
    blocks = [Csr.of(m) for m in mats]
    n = blocks[0].shape[0]
    if any(b.shape[0] != n for b in blocks):
        raise ValueError("hstack: the blocks have different numbers of rows")
    dtype = np.result_type(*(b.dtype for b in blocks)) if dtype is None else np.dtype(dtype)
    indptr = np.zeros(n + 1, dtype=np.int64)
    for b in blocks:
        indptr += b.indptr
    nnz = int(indptr[-1])
    width = sum(b.shape[1] for b in blocks)
    index_dtype = np.int32 if max(nnz, width) < np.iinfo(np.int32).max else np.int64
    data = np.empty(nnz, dtype=dtype)
    indices = np.empty(nnz, dtype=index_dtype)
    before = np.zeros(n, dtype=np.int64)  # entries of the earlier blocks in each row
    offset = 0
    for b in blocks:
        rows = b.row_of_entries()
        at = (
            np.arange(b.nnz, dtype=np.int64)
            - b.indptr[:-1].astype(np.int64)[rows]
            + indptr[:-1][rows]
            + before[rows]
        )
        data[at] = b.data
        indices[at] = b.indices.astype(index_dtype, copy=False) + offset
        before += np.diff(b.indptr)
        offset += b.shape[1]
    return Csr(data, indices, indptr.astype(index_dtype), (n, width))
