"""Private plumbing shared by every chapter: the bounded loop, input checks, linalg."""

from jaxml._core.checks import (
    as_float_array,
    check_class_labels,
    check_finite,
    check_int_in_range,
    check_labels,
    check_matrix,
    check_ndim,
    check_nonnegative,
    check_positive,
    check_same_length,
    check_vector,
    float_dtype,
    is_concrete,
)
from jaxml._core.linalg import (
    add_jitter,
    blocked_gram,
    cholesky_solve,
    logdet_from_cholesky,
    psd_solve,
    safe_cholesky,
    symmetrize,
    whiten,
)
from jaxml._core.loop import LoopResult, iterate, iterate_unrolled, run_loop
from jaxml._core.train import TrainResult, scan_with_progress, train

__all__ = [
    "LoopResult", "TrainResult", "add_jitter", "as_float_array", "blocked_gram",
    "check_class_labels", "check_finite", "check_int_in_range", "check_labels", "check_matrix", "check_ndim",
    "check_nonnegative", "check_positive", "check_same_length", "check_vector",
    "cholesky_solve", "float_dtype", "is_concrete", "iterate", "iterate_unrolled",
    "logdet_from_cholesky", "psd_solve", "run_loop", "safe_cholesky", "scan_with_progress",
    "symmetrize", "train", "whiten",
]
