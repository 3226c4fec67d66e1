"""Private plumbing shared by every chapter: the bounded loop, input checks, linalg."""

from jaxml._core.batched import BatchState, batched_solver, iterate_batched
from jaxml._core.checks import (
    as_float_array,
    check_callable,
    check_class_labels,
    check_finite,
    check_in_range,
    check_int,
    check_int_in_range,
    check_labels,
    check_loop_options,
    check_matrix,
    check_once,
    check_ndim,
    check_nonnegative,
    check_positive,
    check_real_dtype,
    check_returns,
    check_same_length,
    check_value,
    check_vector,
    checks_on_outputs,
    float_dtype,
    host_function,
    is_concrete,
    is_host_function,
    keep_checks,
    runtime_checks,
    runtime_checks_enabled,
    set_runtime_checks,
)
from jaxml._core.fold import (Chunks, auto_axes, fold_chunks, fold_map_rows, fold_rows,
                              map_rows, n_rows, row_mesh, shard_rows)
from jaxml._core.linalg import (
    add_jitter,
    blocked_gram,
    cholesky_solve,
    logdet_from_cholesky,
    max_eigenvalue,
    mixed_precision_pays,
    psd_solve,
    refine_top_eigenpairs,
    safe_cholesky,
    shifted_scatter,
    symmetrize,
    whiten,
)
from jaxml._core.loop import (
    Adjoint,
    Direct,
    Implicit,
    LoopResult,
    StepInfo,
    Unrolled,
    fixed_point,
)
from jaxml._core.numerics import (
    HIGHEST,
    LOG_2PI,
    bernoulli_log_prob,
    diag_gaussian_log_prob,
    log_cholesky_from_tril,
    safe_norm,
    standard_normal_log_prob,
    tril_from_log_cholesky,
)
from jaxml._core.prox import (
    ProxInfo,
    ProxState,
    backtrack,
    extrapolate,
    is_uphill,
    momentum,
    prox_gradient_step,
    prox_init,
    restart_momentum,
)
from jaxml._core.train import (
    TrainInfo,
    TrainResult,
    TrainState,
    scan_with_progress,
    train,
    train_init,
    train_step,
)

__all__ = [name for name in dir() if not name.startswith("_")]
